-- Issue 18 (the soak): every /metrics scrape called whatsapp_service_status(), which counted
-- `needs_review` messages with a full scan of whatsapp_messages (no index has that status) and the
-- last 24 hours of inbound messages (at 80 msg/s, 7M rows): 0.3-2 s per scrape at 1M rows,
-- growing with the table, holding one of the service's two sync workers; webhook p99 3.1 s.
--   * whatsapp_service_gauges(): what /metrics reads, every count served by a partial index or a
--     small table, so a scrape costs the same at any table size;
--   * whatsapp_service_status() (the /ops status page, people) is the gauges plus the counts that
--     must scan a day of messages or every link;
--   * an index for the `needs_review` count, which the gauges need.

-- squawk: require-concurrent-index-creation is excluded (.squawk.toml); the build's write pause is in the runbook.
create index whatsapp_messages_needs_review_idx on public.whatsapp_messages (claimed_at) where status = 'needs_review';

create function public.whatsapp_service_gauges()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  perform private.require_support_or_service_role();
  return jsonb_build_object(
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
    'at', now());
end
$$;
comment on function public.whatsapp_service_gauges() is
  'Support and service role: the service''s gauges for /metrics (held, outbound queue, failures, webhook errors, media), '
  'each served by a partial index or a small table, so a scrape costs the same whatever the size of the inbox.';
revoke execute on function public.whatsapp_service_gauges() from public, anon, authenticated;
grant execute on function public.whatsapp_service_gauges() to authenticated, service_role;

create or replace function public.whatsapp_service_status()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  perform private.require_support_or_service_role();
  return public.whatsapp_service_gauges() || jsonb_build_object(
    'inbound_last_24h', (select coalesce(jsonb_object_agg(s.routing_status, s.n), '{}') from (
        select m.routing_status, count(*) as n from public.whatsapp_messages m
        where m.direction = 'incoming' and m.user_id is null and m.created_at > now() - interval '24 hours'
        group by m.routing_status) s),
    'declined_links', (select count(*) from public.whatsapp_tenant_links l where l.state = 'declined'));
end
$$;
comment on function public.whatsapp_service_status() is
  'Support and service role: the status page''s counts, whatsapp_service_gauges() and the ones that scan a day of '
  'inbound messages or every tenant link (not for /metrics).';
