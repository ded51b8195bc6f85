-- Benchmark world, part 2b: messages :lo..:hi of :messages (several chunks run in parallel).
-- 1% are held inbound messages from unknown numbers; of the rest 55% are inbound (delivered,
-- with the raw element Meta sent, kept in private.whatsapp_message_details with the routing
-- decision) and 45% landlord replies (outbound, read). sent_at spreads
-- the history evenly over the last 365 days in message order. Triggers are bypassed (counters
-- are computed once in world_finish.sql).

\set ON_ERROR_STOP 1
set client_min_messages = warning;
set synchronous_commit = off;
set work_mem = '256MB';
set session_replication_role = replica;

with src as (
select bench.uid(6, x.g) as id, x.wamid, x.direction, x.direction = 'incoming' as is_from_tenant, 'text' as type,
       x.body,
       case when x.direction = 'outgoing' then 'From Landlord via ZenRent:' end as landlord_signature,
       case when x.direction = 'incoming' then x.phone else '447700000000' end as from_phone,
       case when x.direction = 'incoming' then '447700000000' else x.phone end as to_phone,
       x.phone as tenant_phone,
       case when x.direction = 'incoming' then 'Tenant' end as contact_name,
       x.landlord_id, x.tenant_id, x.property_id, x.conversation_id,
       case when x.held then 'unknown_sender' when x.direction = 'incoming' then 'delivered' else 'outbound' end
         as routing_status,
       case when x.direction = 'incoming' then 'received' else 'read' end as status,
       case when x.direction = 'outgoing' then 'text' end as outbound_kind,
       x.at as sent_at, x.at as created_at, x.at as updated_at,
       case when x.direction = 'outgoing' then x.at + interval '1 minute' end as delivered_at,
       case when x.direction = 'outgoing' then x.at + interval '5 minutes' end as read_at,
       case when x.direction = 'outgoing' then x.at + interval '5 minutes' end as status_updated_at,
       case when x.held then '{"rule": "no_active_lease_for_phone", "candidates": []}'::jsonb
            when x.direction = 'incoming' then '{"rule": "single_candidate"}'::jsonb end as routing_metadata,
       case when x.direction = 'incoming' then jsonb_build_object(
         'from', x.phone, 'id', x.wamid, 'timestamp', extract(epoch from x.at)::bigint::text,
         'type', 'text', 'text', jsonb_build_object('body', x.body)) end as raw
from (
  select r.g, r.held,
         'wamid.bench' || lpad(r.g::text, 10, '0') as wamid,
         case when r.held or r.u2 < 0.55 then 'incoming' else 'outgoing' end as direction,
         (array['Hi, the boiler is making a strange noise again.',
                'Rent sent this morning, thanks!',
                'Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.',
                'Ok',
                'What day is the inspection?',
                'The front door lock is sticking, could you send someone this week please?',
                'Thanks, see you then',
                'Is it ok if my sister stays for two weeks in March?'])[1 + (r.g % 8)::int] as body,
         now() - interval '365 days' + (r.g::float8 / :messages) * interval '365 days' as at,
         case when r.held then '4478' || lpad((r.g % 100000000)::text, 8, '0') else c.tenant_phone end as phone,
         c.landlord_id, c.tenant_id, c.property_id, c.id as conversation_id
  from (select g, g % 100 = 50 as held, random() as u1, random() as u2
        from generate_series(:lo::bigint, :hi::bigint) g) r
  left join bench.convs c on not r.held and c.r = 1 + floor(:conversations * r.u1 * r.u1)::int
) x
),
messages as (
  insert into public.whatsapp_messages (
    id, wamid, direction, is_from_tenant, type, body, landlord_signature, from_phone, to_phone, tenant_phone,
    contact_name, landlord_id, tenant_id, property_id, conversation_id, routing_status, status,
    outbound_kind, sent_at, created_at, updated_at, delivered_at, read_at, status_updated_at)
  select id, wamid, direction, is_from_tenant, type, body, landlord_signature, from_phone, to_phone, tenant_phone,
         contact_name, landlord_id, tenant_id, property_id, conversation_id, routing_status, status,
         outbound_kind, sent_at, created_at, updated_at, delivered_at, read_at, status_updated_at
  from src
)
insert into private.whatsapp_message_details (message_id, routing_metadata, raw)
select s.id, s.routing_metadata, s.raw from src s where s.routing_metadata is not null;
