-- Why: a media file that never arrives is a lost message to the landlord, and a download or
-- upload worker that stopped shows only as a growing backlog. The status page and /metrics read
-- whatsapp_service_status(): it now also counts media jobs waiting, the age of the oldest one, and
-- the jobs that failed for good in the last 24 hours by kind and error code (e.g. download:gone).

-- Finished jobs are kept (they record each file's history): count the recent failures by index.
create index media_jobs_failed_idx on private.media_jobs (done_at) where last_error is not null;

create or replace function public.whatsapp_service_status()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  perform private.require_support_or_service_role();
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
    'dead_letters_last_24h', (select count(*) from private.webhook_dead_letters d where d.received_at > now() - interval '24 hours'),
    'pending_statuses', (select count(*) from private.pending_message_statuses),
    'active_pins', (select count(*) from private.routing_pins p where p.expires_at > now()),
    'media_pending', (select count(*) from private.media_jobs j where j.done_at is null),
    'oldest_media_pending_at', (select min(j.created_at) from private.media_jobs j where j.done_at is null),
    'media_failed_last_24h', (select coalesce(jsonb_object_agg(f.kind || ':' || f.last_error, f.n), '{}') from (
        select j.kind, j.last_error, count(*) as n from private.media_jobs j
        where j.done_at > now() - interval '24 hours' and j.last_error is not null group by j.kind, j.last_error) f),
    'declined_links', (select count(*) from public.whatsapp_tenant_links l where l.state = 'declined'),
    'at', now());
end
$$;
