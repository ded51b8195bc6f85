-- Benchmark world, part 1 (scratch database only): landlords, properties, tenants, leases and
-- the routing table, generated with generate_series in a few set-based statements.
-- psql variables: :tenants (number of tenants).
--
-- Shape (deterministic, so pgbench scripts can compute a tenant's phone from its number):
--   * tenant i (1..tenants) has phone E.164 '4477' || lpad(i, 8, '0'), typed in one of three
--     formats ('+44 7700 000123', '07700000123', '+447700000123');
--     every 20th tenant has no phone; tenant i with i % 100 = 2 shares the phone of tenant i - 1,
--     who belongs to another landlord (a phone with two landlords: the ambiguous case);
--   * landlords: "agencies" hold the even tenants (about 1,000 tenants each) and small landlords
--     the odd ones (about 10 each); every 10th landlord has not opted in to WhatsApp;
--   * one property and one lease per tenant; 2% of leases ended, 2% pending (so those phones are
--     unknown to routing), and 10% of tenants also have an older ended lease;
--   * ids are bench.uid(kind, n): deterministic and increasing (kind 1 landlord, 2 tenant,
--     3 property, 4 lease, 5 conversation, 6 message).
-- Triggers are bypassed (session_replication_role = replica) and derived columns are written
-- directly: tenants.phone_e164 (checked against private.normalize_phone on a sample below) and
-- the routing table (rebuilt once with public.refresh_tenant_landlord_routing()).

\set ON_ERROR_STOP 1
set client_min_messages = warning;
set synchronous_commit = off;
set work_mem = '256MB';
set maintenance_work_mem = '512MB';

create schema if not exists bench;
grant usage on schema bench to authenticated, service_role;

create or replace function bench.uid(kind int, n bigint) returns uuid
language sql immutable parallel safe set search_path = '' as $$
  select (lpad(to_hex(kind), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid
$$;
create or replace function bench.phone(n bigint) returns text
language sql immutable parallel safe set search_path = '' as $$
  select '4477' || lpad(n::text, 8, '0')
$$;
-- The landlord number of tenant i.
create or replace function bench.landlord_of(i bigint, tenants bigint) returns bigint
language sql immutable parallel safe set search_path = '' as $$
  select case when i % 2 = 0 then 1 + (i / 2) % greatest(1, tenants / 2000)
              else greatest(1, tenants / 2000) + 1 + (i / 2) % greatest(1, tenants / 20) end
$$;
-- The E.164 phone of tenant i (null: no phone).
create or replace function bench.tenant_e164(i bigint) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case when i % 20 = 0 then null when i % 100 = 2 then bench.phone(i - 1) else bench.phone(i) end
$$;
grant execute on all functions in schema bench to authenticated, service_role;

create table bench.params (name text primary key, value bigint not null);
insert into bench.params values
  ('tenants', :tenants),
  ('agencies', greatest(1, :tenants / 2000)),
  ('landlords', greatest(1, :tenants / 2000) + greatest(1, :tenants / 20));

set session_replication_role = replica;

\echo '  landlords'
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data)
select bench.uid(1, k), 'authenticated', 'authenticated', 'landlord' || k || '@bench.test',
       '{"provider":"email"}', jsonb_build_object('full_name', 'Landlord ' || k)
from generate_series(1, (select value from bench.params where name = 'landlords')) k;

insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at, created_at, updated_at)
select bench.uid(1, k),
       case when k <= (select value from bench.params where name = 'agencies') then 'Agency ' || k else 'Landlord ' || k end,
       'landlord' || k || '@bench.test', k % 10 <> 9,
       case when k % 10 <> 9 then now() - interval '30 days' end, now(), now()
from generate_series(1, (select value from bench.params where name = 'landlords')) k;

\echo '  properties'
insert into public.properties (id, user_id, address, city, postcode, created_at, updated_at)
select bench.uid(3, i), bench.uid(1, bench.landlord_of(i, :tenants)),
       (i % 300 + 1) || ' Bench Street, Flat ' || i, 'London', 'E1 6AN', now(), now()
from generate_series(1, :tenants) i;

\echo '  tenants'
insert into public.tenants (id, user_id, name, phone, phone_e164, email, created_at, updated_at)
select bench.uid(2, i), bench.uid(1, bench.landlord_of(i, :tenants)), 'Tenant ' || i,
       case i % 3
         when 0 then '+44 ' || substr(e, 3, 4) || ' ' || substr(e, 7)
         when 1 then '0' || substr(e, 3)
         else '+' || e end,
       e, 'tenant' || i || '@bench.test', now(), now()
from generate_series(1, :tenants) i, lateral (select bench.tenant_e164(i) as e) x;

\echo '  leases'
insert into public.leases (id, tenant_id, property_id, status, start_date, end_date, created_at, updated_at)
select bench.uid(4, i), bench.uid(2, i), bench.uid(3, i),
       case i % 50 when 25 then 'ended' when 26 then 'pending' else 'active' end,
       date '2020-01-01' + (i % 1500)::int,
       case when i % 50 = 25 then date '2020-01-01' + (i % 1500)::int + 365 end, now(), now()
from generate_series(1, :tenants) i;
insert into public.leases (id, tenant_id, property_id, status, start_date, end_date, created_at, updated_at)
select bench.uid(4, :tenants + i), bench.uid(2, i), bench.uid(3, i), 'ended',
       date '2018-01-01' + (i % 700)::int, date '2018-01-01' + (i % 700)::int + 300, now(), now()
from generate_series(1, :tenants) i
where i % 10 = 3;

set session_replication_role = origin;

\echo '  routing table'
select public.refresh_tenant_landlord_routing() as routing_rows \gset
\echo '  routing rows:' :routing_rows

-- The generated phone_e164 must be what the trigger would have computed.
do $$
declare
  bad int;
begin
  select count(*) into bad from public.tenants t
  where t.id in (select bench.uid(2, i) from generate_series(1, least(3000, (select value from bench.params where name = 'tenants'))) i)
    and t.phone_e164 is distinct from private.normalize_phone(t.phone, 'GB');
  if bad > 0 then
    raise exception 'bench world: % generated phones differ from private.normalize_phone', bad;
  end if;
end
$$;

\echo '  analyze'
analyze auth.users, public.user_profiles, public.properties, public.tenants, public.leases, private.tenant_landlord_routing;
