-- Benchmark partitioning, part 3: messages :lo..:hi of :rows into :layout.messages (two psql
-- sessions load chunks at once; a partitioned table routes each row to its month). The row is
-- the one bench/sql/world_messages_chunk.sql writes (full width), or with :narrow the columns
-- the hot indexes and queries use (id, wamid, conversation, landlord, tenant phone, direction,
-- routing status, status, the three times; a wamid without 'wamid.') and nulls for the rest: no
-- body, phones, contact name, signature, receipt times, tenant_id or property_id (their partial
-- indexes hold only new rows then). That is what 100M rows can afford on disk: ~370 bytes a row
-- with the indexes instead of ~600. The `offset 0` fences keep each hash computed once per row.

\set ON_ERROR_STOP 1
set client_min_messages = warning;
set synchronous_commit = off;
set work_mem = '64MB';

insert into :"layout".messages (
  id, wamid, direction, is_from_tenant, type, body, landlord_signature, from_phone, to_phone, tenant_phone,
  contact_name, landlord_id, tenant_id, property_id, conversation_id, routing_status, status, outbound_kind,
  sent_at, created_at, updated_at, delivered_at, read_at, status_updated_at)
select x.id, x.wamid, x.direction, x.incoming, 'text', x.body,
       case when not :narrow and not x.incoming then 'From Landlord via ZenRent:' end,
       case when not :narrow then case when x.incoming then x.phone else '447700000000' end end,
       case when not :narrow then case when x.incoming then '447700000000' else x.phone end end,
       x.phone, case when not :narrow and x.incoming then 'Tenant' end,
       x.landlord_id, x.tenant_id, x.property_id, x.conversation_id,
       case when x.held then 'unknown_sender' when x.incoming then 'delivered' else 'outbound' end,
       case when x.incoming then 'received' else 'read' end,
       case when not x.incoming then 'text' end,
       x.at, x.at, x.at,
       case when not :narrow and not x.incoming then x.at + interval '1 minute' end,
       case when not :narrow and not x.incoming then x.at + interval '5 minutes' end,
       case when not :narrow and not x.incoming then x.at + interval '5 minutes' end
from (
  select m.*, case when m.incoming then 'incoming' else 'outgoing' end as direction,
         case when m.held then '4478' || lpad((m.g % 100000000)::text, 8, '0') else bench.phone(m.r) end as phone,
         case when not m.held then bench.landlord_id(m.r, :tenants) end as landlord_id,
         case when not m.held and not :narrow then bench.tenant_id(m.r) end as tenant_id,
         case when not m.held and not :narrow then bench.property_id(m.r) end as property_id,
         case when not m.held then bench.conv_id(m.r) end as conversation_id
  from (
    select g, bench.msg_held(g) as held, bench.msg_incoming(g) as incoming, bench.msg_r(g, :conversations) as r,
           bench.msg_id(g) as id, bench.msg_wamid(g, :narrow) as wamid, bench.body(g, :narrow) as body,
           bench.msg_at(g, :rows, :'start', :span_s) as at
    from generate_series(:lo::bigint, :hi::bigint) g
    offset 0
  ) m
  offset 0
) x;
