-- Outgoing replies that status webhooks can report on (bench/sql/ingest_status.sql), one per
-- conversation of the world, as the sender leaves them once Meta accepted them: status 'sent' with
-- Meta's wamid. psql variables: :n (how many), :tag (this run's, so that wamids never repeat).
\set ON_ERROR_STOP 1
set client_min_messages = warning;
drop table if exists bench.status_targets;
drop sequence if exists bench.status_seq;
create sequence bench.status_seq;
create table bench.status_targets (k int primary key, wamid text not null, phone text not null);
with picked as (
  select c.*, row_number() over (order by c.id) as k
  from public.whatsapp_conversations c
  where c.status <> 'blocked'
  limit :n
), sent as (
  insert into public.whatsapp_messages (wamid, direction, is_from_tenant, type, body, status, routing_status, outbound_kind,
                                        landlord_id, tenant_id, property_id, conversation_id, tenant_phone, to_phone, sent_at)
  select 'wamid.HBgMBENCHOUT' || :'tag' || '.' || p.k, 'outgoing', false, 'text', 'Thanks, someone will come on Tuesday.', 'sent', 'outbound',
         'text', p.landlord_id, p.tenant_id, p.property_id, p.id, p.tenant_phone, p.tenant_phone, now() - interval '1 minute'
  from picked p
  returning wamid, tenant_phone
)
insert into bench.status_targets
select split_part(s.wamid, '.', 3)::int, s.wamid, s.tenant_phone from sent s;
grant select on bench.status_targets to service_role;
grant usage on sequence bench.status_seq to service_role;
analyze bench.status_targets;
