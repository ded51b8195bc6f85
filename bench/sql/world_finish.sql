-- Benchmark world, part 2c: conversations with their counters computed from the history in one
-- pass, the dropped indexes rebuilt, statistics, and the samples the inbox benchmark draws from.

\set ON_ERROR_STOP 1
set client_min_messages = warning;
set synchronous_commit = off;
set work_mem = '512MB';
set maintenance_work_mem = '1GB';

\echo '  conversations (counters from history)'
set session_replication_role = replica;
insert into public.whatsapp_conversations (id, landlord_id, tenant_id, tenant_phone, property_id, status, unread_count,
                                           last_message_at, last_inbound_at, last_message_preview, created_at, updated_at)
select c.id, c.landlord_id, c.tenant_id, c.tenant_phone, c.property_id, c.status, coalesce(a.unread, 0),
       a.last_at, a.last_in, case when a.last_at is not null then 'Thanks, see you then' end,
       coalesce(a.first_at, now()), now()
from bench.convs c
left join (
  select m.conversation_id, max(m.sent_at) as last_at, max(m.sent_at) filter (where m.is_from_tenant) as last_in,
         count(*) filter (where m.is_from_tenant and m.sent_at > now() - interval '7 days') as unread,
         min(m.sent_at) as first_at
  from public.whatsapp_messages m
  where m.conversation_id is not null
  group by m.conversation_id
) a on a.conversation_id = c.id;
-- A landlord who already talks with a tenant has a confirmed link, as the history backfill and
-- the first routed message leave it (private.set_link_state).
insert into public.whatsapp_tenant_links (landlord_id, tenant_phone, state, state_via, state_changed_at, created_at, updated_at)
select c.landlord_id, c.tenant_phone, 'confirmed', 'history', c.created_at, c.created_at, c.created_at
from public.whatsapp_conversations c;
set session_replication_role = origin;

\echo '  rebuilding whatsapp_messages indexes'
do $$
declare
  r record;
begin
  for r in select name, definition from bench.dropped_indexes order by name loop
    execute r.definition;
  end loop;
end
$$;
drop table bench.dropped_indexes;

\echo '  vacuum analyze'
vacuum (analyze) public.whatsapp_messages;
vacuum (analyze) public.whatsapp_conversations;

\echo '  sender pools'
-- Phones with exactly one candidate landlord, who has opted in (routing delivers them): those
-- with a conversation (route_existing.sql draws from them at random) and those without one
-- (route_new.sql takes each once, in order, through bench.new_phone_seq).
create table bench.existing_phones (n int primary key, phone text not null);
create table bench.new_phones (n int primary key, phone text not null);
create sequence bench.new_phone_seq;
with single as (
  select r.tenant_phone as phone, r.landlord_id
  from private.tenant_landlord_routing r
  join public.user_profiles up on up.id = r.landlord_id and up.whatsapp_enabled
  where not exists (select 1 from private.tenant_landlord_routing o
                    where o.tenant_phone = r.tenant_phone and o.landlord_id <> r.landlord_id)
), split as (
  select s.phone, cv.id is not null as has_conversation
  from single s
  left join public.whatsapp_conversations cv on cv.landlord_id = s.landlord_id and cv.tenant_phone = s.phone
  where cv.status is distinct from 'blocked'
), ins as (
  insert into bench.existing_phones
  select row_number() over (order by phone), phone from split where has_conversation
)
insert into bench.new_phones
select row_number() over (order by md5(phone)), phone from split where not has_conversation;
insert into bench.params
select 'existing_phones', count(*) from bench.existing_phones union all
select 'new_phones', count(*) from bench.new_phones;
grant select on bench.existing_phones, bench.new_phones to service_role;
grant usage on sequence bench.new_phone_seq to service_role;
select value as existing_phones from bench.params where name = 'existing_phones' \gset
select value as new_phones from bench.params where name = 'new_phones' \gset
\echo '  sender pools:' :existing_phones 'phones with a conversation,' :new_phones 'without'

\echo '  inbox samples'
-- Landlords and conversations as requests would hit them: drawn through random messages, so an
-- active conversation (and a landlord with many) is drawn more often than a quiet one.
create table bench.inbox_samples (
  k int primary key,
  landlord_id uuid not null,
  claims text not null,
  conversation_id uuid not null
);
insert into bench.inbox_samples
select row_number() over (), m.landlord_id,
       json_build_object('sub', m.landlord_id, 'role', 'authenticated')::text, m.conversation_id
from (select distinct bench.uid(6, 1 + floor(random() * :messages)::bigint) as id
      from generate_series(1, 2000)) pick
join public.whatsapp_messages m on m.id = pick.id
where m.conversation_id is not null
limit 1000;

-- Deep pages: conversations with at least 100 messages (or the longest ones in a small world),
-- a keyset cursor in the middle of their history.
create table bench.deep_samples (
  k int primary key,
  landlord_id uuid not null,
  claims text not null,
  conversation_id uuid not null,
  depth int not null,
  deep_at timestamptz not null,
  deep_id uuid not null
);
with counted as (
  select s.conversation_id, s.landlord_id, s.claims,
         (select count(*) from public.whatsapp_messages m where m.conversation_id = s.conversation_id) as n
  from bench.inbox_samples s
), chosen as (
  select * from counted where n >= 100
  union all
  select * from (select * from counted order by n desc limit 20) longest
  where not exists (select 1 from counted where n >= 100)
)
insert into bench.deep_samples
select row_number() over (), c.landlord_id, c.claims, c.conversation_id, c.n / 2, cur.sent_at, cur.id
from chosen c
cross join lateral (
  select m.sent_at, m.id from public.whatsapp_messages m
  where m.conversation_id = c.conversation_id
  order by m.sent_at desc, m.id desc offset c.n / 2 limit 1
) cur;
grant select on bench.inbox_samples, bench.deep_samples to authenticated;
analyze bench.inbox_samples, bench.deep_samples;
select (select count(*) from bench.inbox_samples) as inbox_samples, (select count(*) from bench.deep_samples) as deep_samples,
       (select percentile_disc(0.5) within group (order by depth) from bench.deep_samples) as median_depth \gset
\echo '  samples:' :inbox_samples 'inbox,' :deep_samples 'deep (median depth' :median_depth 'messages)'
