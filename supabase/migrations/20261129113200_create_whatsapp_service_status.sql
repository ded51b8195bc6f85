-- Why: operators see the service at a glance (the support console's status page and /metrics):
-- routing outcomes, held messages, the outbound queue, failures by Meta's code, webhook errors,
-- pins. Counts only, never message content; support staff and the service role only.

create function public.whatsapp_service_status()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  -- `role` is the caller's SET ROLE (security definer changes current_user, not this setting).
  if coalesce(current_setting('role', true), '') <> 'service_role' and (select auth.role()) is distinct from 'service_role' then
    perform private.require_support();
  end if;
  return jsonb_build_object(
    'inbound_last_24h', (select coalesce(jsonb_object_agg(s.routing_status, s.n), '{}') from (
        select m.routing_status, count(*) as n from public.whatsapp_messages m
        where m.direction = 'incoming' and m.user_id is null and m.created_at > now() - interval '24 hours'
        group by m.routing_status) s),
    'held', (select count(*) from public.whatsapp_messages m where m.is_held),
    'outbound_queued', (select count(*) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_sending', (select count(*) from public.whatsapp_messages m where m.status = 'sending'),
    'outbound_needs_review', (select count(*) from public.whatsapp_messages m where m.status = 'needs_review'),
    'oldest_queued_at', (select min(m.created_at) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_failed_last_24h', (select coalesce(jsonb_object_agg(coalesce(f.error_code::text, 'none'), f.n), '{}') from (
        select m.error_code, count(*) as n from public.whatsapp_messages m
        where m.status = 'failed' and m.failed_at > now() - interval '24 hours' group by m.error_code) f),
    'webhook_errors_last_24h', (select count(*) from private.webhook_errors e where e.received_at > now() - interval '24 hours'),
    'pending_statuses', (select count(*) from private.pending_message_statuses),
    'active_pins', (select count(*) from private.routing_pins p where p.expires_at > now()),
    'at', now());
end
$$;
comment on function public.whatsapp_service_status() is
  'Support and service role: counts for the status page and metrics (no message content).';
revoke execute on function public.whatsapp_service_status() from public, anon, authenticated;
grant execute on function public.whatsapp_service_status() to authenticated, service_role;
