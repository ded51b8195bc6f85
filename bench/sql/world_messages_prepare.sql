-- Benchmark world, part 2a: the conversation plan and a fast path for loading history.
-- Conversations: tenants with a phone and i % 3 <> 0, ranked in a fixed pseudo-random order;
-- messages pick a rank with a skew (rank = 1 + floor(n * u^2)), so a few conversations are long
-- (deep pages) and most are short. The secondary indexes of whatsapp_messages are dropped here
-- and rebuilt once after the load (world_finish.sql), which is far faster than maintaining them row by row.

\set ON_ERROR_STOP 1
set client_min_messages = warning;
set work_mem = '256MB';

create table bench.convs (
  r int primary key,
  i bigint not null,
  id uuid not null,
  landlord_id uuid not null,
  tenant_id uuid not null,
  property_id uuid not null,
  tenant_phone text not null,
  status text not null
);
insert into bench.convs
select row_number() over (order by hashint8(i), i), i, bench.uid(5, i),
       bench.uid(1, bench.landlord_of(i, :tenants)), bench.uid(2, i), bench.uid(3, i), bench.tenant_e164(i),
       case when i % 500 = 7 then 'blocked' when i % 50 = 11 then 'archived' else 'active' end
from generate_series(1, :tenants) i
where bench.tenant_e164(i) is not null and i % 3 <> 0;
analyze bench.convs;
insert into bench.params select 'conversations', count(*) from bench.convs;
insert into bench.params values ('messages', :messages);

create table bench.dropped_indexes (name text primary key, definition text not null);
insert into bench.dropped_indexes
select i.relname, pg_get_indexdef(x.indexrelid)
from pg_index x
join pg_class i on i.oid = x.indexrelid
where x.indrelid = 'public.whatsapp_messages'::regclass
  and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid);
do $$
declare
  r record;
begin
  for r in select name from bench.dropped_indexes loop
    execute format('drop index public.%I', r.name);
  end loop;
end
$$;
