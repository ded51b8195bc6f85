-- Why: phase 2 data. Every multi-WABA message must appear in the right conversation of the new
-- inbox, nothing lost, nothing shown to the wrong landlord. Rules:
--   * landlord_id = user_id (the WABA's owner); is_from_tenant = (direction = 'incoming');
--   * the tenant's phone is from_phone for incoming and to_phone for outgoing messages,
--     compared normalized (private.normalize_phone), never as raw strings;
--   * tenant = that landlord's tenant with that phone; with several, the one whose lease was
--     active at the message time, else none and the ambiguity recorded in routing_metadata;
--     property = the lease active at the message time ("the message time" is its UTC day, so
--     the result does not depend on the session's TimeZone);
--   * one conversation per (landlord, phone), counters from history, unread_count 0; its
--     tenant and property are those of its newest message that names a tenant;
--   * no tenant with that phone -> routing_status 'unknown_sender', still the landlord's (by
--     user_id and landlord_id), never deleted.
-- It runs in small batches (one transaction each, FOR UPDATE SKIP LOCKED, no table lock), is
-- idempotent (a row is pending while landlord_id is null) and resumes after any interruption:
-- the result does not depend on where batches start and end, or on batches running at once.

-- A backfill is not an edit: it keeps updated_at as it was.
create or replace function private.trg_set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  if coalesce(current_setting('zenrent.preserve_updated_at', true), '') <> 'on' then
    new.updated_at := now();
  end if;
  return new;
end
$$;
comment on function private.trg_set_updated_at() is
  'Shared trigger: keeps updated_at at the time of the last update (not while zenrent.preserve_updated_at is on: backfills).';

create index whatsapp_messages_backfill_pending_idx on public.whatsapp_messages (id)
  where landlord_id is null and user_id is not null;

create function public.backfill_multi_waba_history(batch_size integer default 2000)
returns jsonb
language plpgsql
security definer -- rewrites every landlord's history and the archive; service_role only
set search_path = ''
-- Plan every batch for its real size: from the sixth call in a session PL/pgSQL would switch to a
-- generic plan that guesses ten rows for `= any (batch_ids)` and joins the batch to its
-- conversations in a nested loop (batch_size squared comparisons: 14 s instead of 2.5 s for 10,000).
set plan_cache_mode = force_custom_plan
as $$
declare
  country text := private.default_country();
  result jsonb;
  batch_ids uuid[];
  n_archived integer;
begin
  if batch_size is null or batch_size not between 1 and 50000 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'batch_size must be between 1 and 50000', hint = 'e.g. 2000';
  end if;
  perform set_config('zenrent.preserve_updated_at', 'on', true);

  -- Take the next pending rows (skip those another run holds), and archive them before anything changes.
  select array_agg(x.id) into batch_ids from (
    select m.id from public.whatsapp_messages m
    where m.landlord_id is null and m.user_id is not null
    order by m.id limit batch_size
    for update skip locked) x;
  if batch_ids is null then
    return jsonb_build_object('seen', 0, 'archived', 0, 'matched', 0, 'unmatched', 0, 'ambiguous', 0,
                              'conversations_created', 0, 'remaining', 0);
  end if;
  n_archived := private.archive_multi_waba_messages(batch_ids);

  with batch as (
    select m.id, m.user_id, m.direction, m.type,
           private.normalize_phone(case when m.direction = 'incoming' then m.from_phone else m.to_phone end, country) as phone,
           (m.sent_at at time zone 'UTC')::date as day
    from public.whatsapp_messages m
    where m.id = any (batch_ids)
  ),
  decision as (
    -- per message (one index probe each, never batch x batch): the landlord's tenants with this
    -- phone, and the property of each one's lease active that day
    select b.id, b.user_id, b.phone, b.direction, b.type,
           k.n_tenants, k.n_at_time, k.tenant_id, k.property_id, k.tenant_ids
    from batch b
    cross join lateral (
      select count(*) as n_tenants,
             count(x.property_id) as n_at_time,
             case when count(*) = 1 then (array_agg(x.tenant_id))[1]
                  when count(x.property_id) = 1 then (array_agg(x.tenant_id) filter (where x.property_id is not null))[1]
             end as tenant_id,
             case when count(*) = 1 then (array_agg(x.property_id))[1]
                  when count(x.property_id) = 1 then (array_agg(x.property_id) filter (where x.property_id is not null))[1]
             end as property_id,
             coalesce(jsonb_agg(x.tenant_id order by x.tenant_id), '[]') as tenant_ids
      from (
        select t.id as tenant_id,
               (select l.property_id from public.leases l
                 where l.tenant_id = t.id and l.status in ('active', 'ended')
                   and l.start_date <= b.day and (l.end_date is null or l.end_date >= b.day)
                 order by l.start_date desc, l.id limit 1) as property_id
        from public.tenants t
        where t.user_id = b.user_id and t.phone_e164 = b.phone
      ) x
    ) k
  ),
  conversation as (
    -- Find or create, and lock, the conversation of every (landlord, phone) in the batch. DO UPDATE
    -- (a no-op) rather than DO NOTHING: it also returns a row that another session (a concurrent
    -- batch, the live router) committed after this statement's snapshot, where DO NOTHING returns
    -- nothing and the messages would be filed without a conversation. The row lock, held to
    -- commit, also means the counters below see every message filed into it before.
    -- Tenant, property and counters are set from the messages further down.
    insert into public.whatsapp_conversations as cv (landlord_id, tenant_phone)
    select distinct d.user_id, d.phone from decision d where d.n_tenants > 0
    order by 1, 2
    on conflict (landlord_id, tenant_phone) do update set landlord_id = excluded.landlord_id
    returning cv.id, cv.landlord_id, cv.tenant_phone, (cv.xmax = 0) as created
  ),
  updated as (
    update public.whatsapp_messages m set
      landlord_id = d.user_id,
      is_from_tenant = (d.direction = 'incoming'),
      tenant_phone = d.phone,
      tenant_id = d.tenant_id,
      property_id = d.property_id,
      conversation_id = cv.id,
      outbound_kind = case when d.direction = 'outgoing' then case when d.type = 'template' then 'template' else 'text' end end,
      routing_status = case when d.n_tenants = 0 then 'unknown_sender'
                            when d.direction = 'incoming' then 'delivered' else 'outbound' end
    from decision d
    left join conversation cv on cv.landlord_id = d.user_id and cv.tenant_phone = d.phone and d.n_tenants > 0
    where m.id = d.id
    returning m.id, m.conversation_id, m.routing_status,
              case when d.n_tenants = 0 then 'no_tenant_with_phone'
                   when d.n_tenants = 1 then 'tenant_phone'
                   when d.tenant_id is not null then 'lease_active_at_message_time'
                   else 'ambiguous_tenant' end as rule,
              case when d.n_tenants > 1 then d.tenant_ids end as tenant_candidates,
              d.phone is null as phone_unparseable
  ),
  details as (
    insert into private.whatsapp_message_details as x (message_id, routing_metadata)
    select u.id, jsonb_strip_nulls(jsonb_build_object(
             'source', 'multi_waba_backfill', 'rule', u.rule, 'tenant_candidates', u.tenant_candidates,
             'phone_unparseable', case when u.phone_unparseable then true end))
    from updated u
    on conflict (message_id) do update set routing_metadata = x.routing_metadata || excluded.routing_metadata
  )
  select jsonb_build_object(
           'seen', (select count(*) from updated),
           'archived', n_archived,
           'matched', (select count(*) from updated u where u.routing_status <> 'unknown_sender'),
           'unmatched', (select count(*) from updated u where u.routing_status = 'unknown_sender'),
           'ambiguous', (select count(*) from updated u where u.rule = 'ambiguous_tenant'),
           'conversations_created', (select count(*) from conversation c where c.created))
    into result;

  -- Conversation counters from the batch just filed (never touching live unread counts). This is a
  -- new statement: it sees every message filed into these (locked) conversations, in any batch.
  -- Preview: of the conversation's newest message when that one is history (live messages keep the
  -- preview the live trigger gave them); tenant and property: of its newest message naming a tenant
  -- (looked for further back only when the newest names none). Both are read from the messages, so
  -- they do not depend on how the history was cut into batches.
  update public.whatsapp_conversations c set
    last_message_at = greatest(c.last_message_at, s.last_at),
    last_inbound_at = greatest(c.last_inbound_at, s.last_in),
    last_message_preview = case when newest.from_history then newest.preview else c.last_message_preview end,
    tenant_id = case when newest.tenant_id is not null then newest.tenant_id
                     when named.tenant_id is not null then named.tenant_id else c.tenant_id end,
    property_id = case when newest.tenant_id is not null then newest.property_id
                       when named.tenant_id is not null then named.property_id else c.property_id end
  from (
    select m.conversation_id, max(m.sent_at) as last_at,
           max(m.sent_at) filter (where m.direction = 'incoming') as last_in
    from public.whatsapp_messages m
    where m.id = any (batch_ids) and m.conversation_id is not null
    group by m.conversation_id
  ) s
  cross join lateral (
    select m.user_id is not null as from_history, m.tenant_id, m.property_id,
           left(coalesce(nullif(btrim(m.body), ''), '[' || m.type || ']'), 160) as preview
    from public.whatsapp_messages m
    where m.conversation_id = s.conversation_id
    order by m.sent_at desc, m.id desc limit 1
  ) newest
  left join lateral (
    select m.tenant_id, m.property_id
    from public.whatsapp_messages m
    where newest.tenant_id is null and m.conversation_id = s.conversation_id and m.tenant_id is not null
    order by m.sent_at desc, m.id desc limit 1
  ) named on true
  where c.id = s.conversation_id;

  -- Pending rows left, counted up to ten batches: an exact count of the whole history after every
  -- batch would make the run quadratic (multi_waba_migration_report() has the exact figure).
  return result || jsonb_build_object('remaining', (
    select count(*) from (
      select 1 from public.whatsapp_messages m where m.landlord_id is null and m.user_id is not null
      limit 10 * batch_size) x));
end
$$;
comment on function public.backfill_multi_waba_history(integer) is
  'Service role: file the next batch of multi-WABA messages into conversations (idempotent, resumable; call until '
  'remaining = 0). Returns counts for the batch: seen, archived, matched, unmatched, ambiguous, conversations_created, '
  'remaining (pending rows left, counted up to 10 x batch_size; 0 means done).';

create function public.multi_waba_migration_report()
returns jsonb
language sql
stable
security definer -- reads every landlord's history; service_role only
set search_path = ''
as $$
  select jsonb_build_object(
    'messages', count(*),
    'pending', count(*) filter (where m.landlord_id is null),
    'matched', count(*) filter (where m.routing_status in ('delivered', 'outbound')),
    'unmatched', count(*) filter (where m.routing_status = 'unknown_sender'),
    'ambiguous', count(*) filter (where d.routing_metadata ->> 'rule' = 'ambiguous_tenant'),
    'conversations', count(distinct m.conversation_id),
    'archived', (select count(*) from archive.multi_waba_messages))
  from public.whatsapp_messages m
  left join private.whatsapp_message_details d on d.message_id = m.id
  where m.user_id is not null
$$;
comment on function public.multi_waba_migration_report() is
  'Service role: totals of the multi-WABA history migration, computed from the data (safe to call any time).';

-- Archive and live rows must match, per landlord: counts and a checksum of the content
-- (every archived column but waba_id, which phase 3 drops, and updated_at). Each row is hashed
-- as a row value, whose text keeps null apart from '' and every column in its own place.
create function public.reconcile_multi_waba_archive()
returns table (landlord_id uuid, archived bigint, live bigint, archive_checksum text, live_checksum text, matches boolean)
language sql
stable
security definer -- reads the archive and every landlord's history; service_role only
set search_path = ''
as $$
  with a as (
    select x.user_id, count(*) as n,
           md5(string_agg((x.id, x.user_id, x.wamid, x.from_phone, x.to_phone, x.direction, x.type, x.body,
                           x.status, x.sent_at, x.created_at)::text, e'\n' order by x.id)) as checksum
    from archive.multi_waba_messages x group by x.user_id
  ),
  l as (
    select m.user_id, count(*) as n,
           md5(string_agg((m.id, m.user_id, m.wamid, m.from_phone, m.to_phone, m.direction, m.type, m.body,
                           m.status, m.sent_at, m.created_at)::text, e'\n' order by m.id)) as checksum
    from public.whatsapp_messages m where m.user_id is not null group by m.user_id
  )
  select coalesce(a.user_id, l.user_id), coalesce(a.n, 0), coalesce(l.n, 0), a.checksum, l.checksum,
         a.n is not distinct from l.n and a.checksum is not distinct from l.checksum
  from a full join l on l.user_id = a.user_id
  order by 1
$$;
comment on function public.reconcile_multi_waba_archive() is
  'Service role: per landlord, archive vs live multi-WABA rows (count and content checksum); matches = true when identical.';

revoke execute on function public.backfill_multi_waba_history(integer), public.multi_waba_migration_report(),
  public.reconcile_multi_waba_archive() from public, anon, authenticated;
grant execute on function public.backfill_multi_waba_history(integer), public.multi_waba_migration_report(),
  public.reconcile_multi_waba_archive() to service_role;
