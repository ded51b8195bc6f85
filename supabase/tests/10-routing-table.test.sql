-- private.tenant_landlord_routing follows every change of tenants, leases and properties in the
-- same transaction (one row per phone and landlord: the newest active lease; names, opt-in and
-- addresses are read when routing, so changing them rewrites nothing),
-- equals its defining query private.tenant_landlord_routing_source after a few hundred random
-- changes, and public.refresh_tenant_landlord_routing() repairs it (service role only).
-- Phones 447400100xxx are used only here (the seed uses 447700900xxx).
begin;
select plan(39);

-- Setup (as postgres) ----------------------------------------------------------------------
select tests.create_supabase_user('rt_alice');
select tests.create_supabase_user('rt_bob');
select tests.create_supabase_user('rt_carol');

insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at) values
  (tests.get_supabase_uid('rt_alice'), 'Alice RT', true, now()),
  (tests.get_supabase_uid('rt_bob'), 'Bob RT', true, now()),
  (tests.get_supabase_uid('rt_carol'), 'Carol RT', false, null);

insert into public.properties (id, user_id, address) values
  ('a0000000-0010-4000-8000-000000000001', tests.get_supabase_uid('rt_alice'), '1 Alice Road'),
  ('a0000000-0010-4000-8000-000000000002', tests.get_supabase_uid('rt_alice'), '2 Alice Road'),
  ('a0000000-0010-4000-8000-000000000003', tests.get_supabase_uid('rt_bob'), '3 Bob Street'),
  ('a0000000-0010-4000-8000-000000000004', tests.get_supabase_uid('rt_carol'), '4 Carol Close');

insert into public.tenants (id, user_id, name, phone) values
  ('b0000000-0010-4000-8000-000000000001', tests.get_supabase_uid('rt_alice'), 'Tina One', '07400 100001'),
  ('b0000000-0010-4000-8000-000000000002', tests.get_supabase_uid('rt_alice'), 'Tom Two', '+44 7400 100002'),
  ('b0000000-0010-4000-8000-000000000003', tests.get_supabase_uid('rt_bob'), 'Tina at Bob', '0044 (7400) 100.001'),
  ('b0000000-0010-4000-8000-000000000004', tests.get_supabase_uid('rt_carol'), 'Cleo Four', '07400 100004');

insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0010-4000-8000-000000000001', 'b0000000-0010-4000-8000-000000000001', 'a0000000-0010-4000-8000-000000000001', 'active', '2025-01-01'),
  ('c0000000-0010-4000-8000-000000000002', 'b0000000-0010-4000-8000-000000000002', 'a0000000-0010-4000-8000-000000000002', 'pending', '2026-01-01');

-- Every row compared column by column, in both directions.
create function tests.routing_diff()
returns bigint
language sql
stable
set search_path = ''
as $$
  select count(*) from (
    (select * from private.tenant_landlord_routing except all select * from private.tenant_landlord_routing_source)
    union all
    (select * from private.tenant_landlord_routing_source except all select * from private.tenant_landlord_routing)
  ) d
$$;

-- The routing row a lease stands for (one per phone and landlord: the newest active lease), with
-- what routing reads alongside it (names, opt-in, address: live, by primary key).
create function tests.routing_row(lease uuid)
returns table (tenant_phone text, tenant_id uuid, tenant_name text, landlord_id uuid, landlord_name text,
               landlord_whatsapp_enabled boolean, property_id uuid, property_address text, lease_status text)
language sql
stable
set search_path = ''
as $$
  select r.tenant_phone, r.tenant_id, t.name, r.landlord_id, up.full_name, up.whatsapp_enabled,
         r.property_id, p.address, l.status
  from private.tenant_landlord_routing r
  join public.tenants t on t.id = r.tenant_id
  join public.user_profiles up on up.id = r.landlord_id
  join public.properties p on p.id = r.property_id
  join public.leases l on l.id = r.lease_id
  where r.lease_id = routing_row.lease
$$;

-- Inserts ----------------------------------------------------------------------------------
select results_eq(
  $$ select * from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  $$ values ('447400100001', 'b0000000-0010-4000-8000-000000000001'::uuid, 'Tina One', tests.get_supabase_uid('rt_alice'),
             'Alice RT', true, 'a0000000-0010-4000-8000-000000000001'::uuid, '1 Alice Road', 'active') $$,
  'an active lease inserted gives a routing row with the normalized phone and every column filled');
select is_empty($$ select * from tests.routing_row('c0000000-0010-4000-8000-000000000002') $$,
  'a pending lease does not route');

-- Lease status -----------------------------------------------------------------------------
update public.leases set status = 'active' where id = 'c0000000-0010-4000-8000-000000000002';
select results_eq($$ select tenant_phone, lease_status from tests.routing_row('c0000000-0010-4000-8000-000000000002') $$,
  $$ values ('447400100002', 'active') $$, 'pending -> active adds the row');
update public.leases set status = 'ended' where id = 'c0000000-0010-4000-8000-000000000002';
select is_empty($$ select * from tests.routing_row('c0000000-0010-4000-8000-000000000002') $$,
  'active -> ended removes the row');
update public.leases set status = 'active' where id = 'c0000000-0010-4000-8000-000000000002';

-- Tenant phone and name --------------------------------------------------------------------
update public.tenants set phone = '07400 100 009' where id = 'b0000000-0010-4000-8000-000000000001';
select results_eq($$ select tenant_phone from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  $$ values ('447400100009') $$, 'a new tenant phone is rewritten, normalized');
update public.tenants set phone = null where id = 'b0000000-0010-4000-8000-000000000001';
select is_empty($$ select * from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  'a tenant without a phone does not route');
update public.tenants set phone = '+44 7400 100001' where id = 'b0000000-0010-4000-8000-000000000001';
select results_eq($$ select tenant_phone from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  $$ values ('447400100001') $$, 'a phone given back brings the row back');
update public.tenants set phone = 'ask at the door' where id = 'b0000000-0010-4000-8000-000000000001';
select is_empty($$ select * from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  'a phone that is not a phone number does not route');
update public.tenants set phone = '07400 100001' where id = 'b0000000-0010-4000-8000-000000000001';
update public.tenants set name = 'Tina Renamed' where id = 'b0000000-0010-4000-8000-000000000001';
select results_eq($$ select tenant_phone, tenant_name from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  $$ values ('447400100001', 'Tina Renamed') $$, 'a tenant rename is rewritten');

-- Tenant moved to another landlord: the lease now joins two landlords' rows and must not route.
update public.tenants set user_id = tests.get_supabase_uid('rt_bob') where id = 'b0000000-0010-4000-8000-000000000001';
select is_empty($$ select * from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  'a tenant moved to another landlord no longer routes through the old landlord''s lease');
update public.tenants set user_id = tests.get_supabase_uid('rt_alice') where id = 'b0000000-0010-4000-8000-000000000001';
select results_eq($$ select landlord_id from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  $$ values (tests.get_supabase_uid('rt_alice')) $$, 'moved back, it routes again');

-- Lease tenant and property change ---------------------------------------------------------
update public.leases set tenant_id = 'b0000000-0010-4000-8000-000000000002' where id = 'c0000000-0010-4000-8000-000000000001';
select results_eq($$ select tenant_phone, lease_id from private.tenant_landlord_routing
                    where landlord_id = tests.get_supabase_uid('rt_alice') order by tenant_phone $$,
  $$ values ('447400100002', 'c0000000-0010-4000-8000-000000000002'::uuid) $$,
  'a lease given to another tenant leaves the old phone; the new phone keeps one row: its newest lease');
update public.leases set tenant_id = 'b0000000-0010-4000-8000-000000000001',
                         property_id = 'a0000000-0010-4000-8000-000000000002'
  where id = 'c0000000-0010-4000-8000-000000000001';
select results_eq($$ select tenant_phone, property_id, property_address from tests.routing_row('c0000000-0010-4000-8000-000000000001') $$,
  $$ values ('447400100001', 'a0000000-0010-4000-8000-000000000002'::uuid, '2 Alice Road') $$,
  'a lease moved to another property carries its id and address');

-- Names, addresses and opt-in are read when routing: changing them rewrites no routing row ---
create temporary table routing_before on commit drop as select xmin::text as v, * from private.tenant_landlord_routing;
update public.properties set address = '2 Alice Road, Flat B' where id = 'a0000000-0010-4000-8000-000000000002';
update public.user_profiles set full_name = 'Alice Renamed' where id = tests.get_supabase_uid('rt_alice');
update public.user_profiles set whatsapp_enabled = false where id = tests.get_supabase_uid('rt_alice');
update public.tenants set name = 'Tina Twice Renamed' where id = 'b0000000-0010-4000-8000-000000000001';
select is_empty($$ select xmin::text, * from private.tenant_landlord_routing except select * from routing_before $$,
  'a new address, a landlord rename, an opt-out and a tenant rename rewrite no routing row');
select results_eq(
  $$ select c ->> 'landlord_name', (c ->> 'enabled')::boolean, c ->> 'property_address', c ->> 'tenant_name'
     from jsonb_array_elements(private.routing_candidates('447400100001')) c $$,
  $$ values ('Alice Renamed', false, '2 Alice Road, Flat B', 'Tina Twice Renamed') $$,
  'and routing sees all of them at once');
update public.user_profiles set whatsapp_enabled = true, whatsapp_opted_in_at = now() where id = tests.get_supabase_uid('rt_alice');

-- One phone, two landlords -----------------------------------------------------------------
insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0010-4000-8000-000000000003', 'b0000000-0010-4000-8000-000000000003', 'a0000000-0010-4000-8000-000000000003', 'active', '2025-05-01');
select results_eq(
  $$ select landlord_id, tenant_id from private.tenant_landlord_routing where tenant_phone = '447400100001' order by tenant_id $$,
  $$ values (tests.get_supabase_uid('rt_alice'), 'b0000000-0010-4000-8000-000000000001'::uuid),
            (tests.get_supabase_uid('rt_bob'), 'b0000000-0010-4000-8000-000000000003'::uuid) $$,
  'one phone (typed two ways) with active leases at two landlords gives two rows');

-- A disabled landlord still has routing rows (routing decides landlord_disabled from them).
insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0010-4000-8000-000000000004', 'b0000000-0010-4000-8000-000000000004', 'a0000000-0010-4000-8000-000000000004', 'active', '2025-05-01');
select results_eq($$ select landlord_whatsapp_enabled from tests.routing_row('c0000000-0010-4000-8000-000000000004') $$,
  $$ values (false) $$, 'a landlord not opted in keeps rows, marked not enabled');

-- Deletes ----------------------------------------------------------------------------------
delete from public.leases where id = 'c0000000-0010-4000-8000-000000000003';
select results_eq($$ select count(*)::int from private.tenant_landlord_routing where tenant_phone = '447400100001' $$,
  $$ values (1) $$, 'a deleted lease leaves the routing table');
-- Property moved to another landlord (tenant stays with the old one): its leases stop routing.
update public.properties set user_id = tests.get_supabase_uid('rt_bob') where id = 'a0000000-0010-4000-8000-000000000002';
select is_empty($$ select * from private.tenant_landlord_routing where property_id = 'a0000000-0010-4000-8000-000000000002' $$,
  'a property given to another landlord stops routing its old landlord''s tenants');
update public.properties set user_id = tests.get_supabase_uid('rt_alice') where id = 'a0000000-0010-4000-8000-000000000002';
select results_eq($$ select count(*)::int from private.tenant_landlord_routing where property_id = 'a0000000-0010-4000-8000-000000000002' $$,
  $$ values (2) $$, 'given back, both its leases route again');
delete from public.properties where id = 'a0000000-0010-4000-8000-000000000002';
select is_empty($$ select * from private.tenant_landlord_routing where property_id = 'a0000000-0010-4000-8000-000000000002' $$,
  'a deleted property (leases cascade) leaves the routing table');
insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0010-4000-8000-000000000005', 'b0000000-0010-4000-8000-000000000002', 'a0000000-0010-4000-8000-000000000001', 'active', '2025-05-01');
delete from public.tenants where id = 'b0000000-0010-4000-8000-000000000002';
select is_empty($$ select * from private.tenant_landlord_routing where tenant_id = 'b0000000-0010-4000-8000-000000000002' $$,
  'a deleted tenant (leases cascade) leaves the routing table');
delete from public.user_profiles where id = tests.get_supabase_uid('rt_carol');
select is_empty($$ select * from private.tenant_landlord_routing where landlord_id = tests.get_supabase_uid('rt_carol') $$,
  'a deleted landlord profile (properties, tenants, leases cascade) leaves the routing table');

-- A landlord changing data through the API (RLS, authenticated) updates the table too ------
select tests.authenticate_as('rt_bob');
insert into public.tenants (id, user_id, name, phone) values
  ('b0000000-0010-4000-8000-000000000005', tests.get_supabase_uid('rt_bob'), 'Bea Five', '07400 100005');
insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0010-4000-8000-000000000006', 'b0000000-0010-4000-8000-000000000005', 'a0000000-0010-4000-8000-000000000003', 'active', '2025-07-01');
update public.tenants set phone = '07400 100 055' where id = 'b0000000-0010-4000-8000-000000000005';
reset role;
select results_eq($$ select tenant_phone, landlord_name from tests.routing_row('c0000000-0010-4000-8000-000000000006') $$,
  $$ values ('447400100055', 'Bob RT') $$, 'changes made by a landlord under RLS are followed as well');

select is(tests.routing_diff(), 0::bigint, 'after the scripted changes the table equals its defining query');

-- Property-style: a few hundred seeded-random changes -------------------------------------
-- After every step the table is compared with the defining query; each step logs what it
-- changed (rows) and how many routing rows the random landlords have, so that the check
-- cannot pass vacuously.
create temporary table routing_steps (step int, op text, changed int, routed int, shared int, mismatches bigint) on commit drop;

-- One of the ids, chosen by the seeded random() (ids are deterministic and sorted, so a seed
-- replays the same walk whatever the physical order of the rows).
create function tests.pick(ids uuid[]) returns uuid language sql volatile set search_path = '' as $$
  select ids[1 + floor(random() * cardinality(ids))::int]
$$;

do $$
declare
  landlords uuid[];
  phones text[] := array['07400 100101', '+44 7400 100101', '0044 7400 100 102', '07400-100103', '+1 212 555 0104',
                         '07400 100104', '+447400100105', 'not a phone', null, '07400 100102'];
  -- weights: inserts and status flips come up more often than deletes
  ops text[] := array['tenant_insert', 'tenant_insert', 'tenant_phone', 'tenant_phone', 'tenant_name', 'tenant_landlord',
                      'tenant_delete', 'lease_insert', 'lease_insert', 'lease_insert', 'lease_insert', 'lease_status',
                      'lease_status', 'lease_tenant', 'lease_property', 'lease_start', 'lease_delete', 'property_insert',
                      'property_address', 'property_landlord', 'property_delete', 'profile_enabled', 'profile_name',
                      'many_tenant_names', 'many_lease_status', 'landlord_insert', 'landlord_delete'];
  statuses text[] := array['pending', 'active', 'active', 'active', 'ended'];
  op text;
  l uuid;
  t uuid;
  p uuid;
  x uuid;
  i int;
  rc int;
begin
  perform setseed(0.4242);
  for i in 1..5 loop
    l := tests.create_supabase_user('rt_prop_' || i);
    insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at)
    values (l, 'Prop Landlord ' || i, i % 2 = 0, case when i % 2 = 0 then now() end);
    insert into public.properties (id, user_id, address)
      select md5('rtw-p-' || i || '-' || g)::uuid, l, 'Prop ' || i || '/' || g from generate_series(1, 4) g;
    insert into public.tenants (id, user_id, name, phone)
      select md5('rtw-t-' || i || '-' || g)::uuid, l, 'Prop tenant ' || i || '/' || g,
             phones[1 + floor(random() * array_length(phones, 1))::int]
      from generate_series(1, 4) g;
    insert into public.leases (id, tenant_id, property_id, status, start_date)
      select md5('rtw-l-' || i || '-' || g)::uuid, md5('rtw-t-' || i || '-' || g)::uuid, md5('rtw-p-' || i || '-' || (5 - g))::uuid,
             'active', '2025-01-01'
      from generate_series(1, 4) g;
  end loop;

  for i in 1..400 loop
    landlords := (select array_agg(up.id order by up.full_name) from public.user_profiles up where up.full_name like 'Prop Landlord%');
    l := landlords[1 + floor(random() * array_length(landlords, 1))::int];
    op := ops[1 + floor(random() * array_length(ops, 1))::int];
    t := tests.pick((select array_agg(tn.id order by tn.id) from public.tenants tn where tn.user_id = l));
    p := tests.pick((select array_agg(pr.id order by pr.id) from public.properties pr where pr.user_id = l));
    -- a lease of one of l's properties
    x := tests.pick((select array_agg(le.id order by le.id) from public.leases le
                     join public.properties pr on pr.id = le.property_id where pr.user_id = l));
    rc := 0;
    case op
      when 'tenant_insert' then
        insert into public.tenants (id, user_id, name, phone)
        values (md5('rtw-t-step-' || i)::uuid, l, 'Prop tenant ' || i, phones[1 + floor(random() * array_length(phones, 1))::int]);
        get diagnostics rc = row_count;
      when 'tenant_phone' then
        update public.tenants set phone = phones[1 + floor(random() * array_length(phones, 1))::int] where id = t;
        get diagnostics rc = row_count;
      when 'tenant_name' then
        update public.tenants set name = 'Prop tenant renamed ' || i where id = t;
        get diagnostics rc = row_count;
      when 'tenant_landlord' then
        -- leaves the tenant's leases joining two landlords: they must stop routing
        update public.tenants set user_id = landlords[1 + floor(random() * array_length(landlords, 1))::int] where id = t;
        get diagnostics rc = row_count;
      when 'tenant_delete' then
        delete from public.tenants where id = t;
        get diagnostics rc = row_count;
      when 'lease_insert' then
        if t is not null and p is not null then
          insert into public.leases (id, tenant_id, property_id, status, start_date)
          values (md5('rtw-l-step-' || i)::uuid, t, p, statuses[1 + floor(random() * array_length(statuses, 1))::int], date '2024-01-01' + (random() * 700)::int);
          get diagnostics rc = row_count;
        end if;
      when 'lease_status' then
        update public.leases set status = statuses[1 + floor(random() * array_length(statuses, 1))::int] where id = x;
        get diagnostics rc = row_count;
      when 'lease_tenant' then
        -- another tenant of the property's landlord (a lease must join one landlord's rows)
        update public.leases set tenant_id = t where id = x and t is not null;
        get diagnostics rc = row_count;
      when 'lease_property' then
        -- a lease of one of l's tenants, moved to one of l's properties
        x := tests.pick((select array_agg(le.id order by le.id) from public.leases le
                         join public.tenants tn on tn.id = le.tenant_id where tn.user_id = l));
        update public.leases set property_id = p where id = x and p is not null;
        get diagnostics rc = row_count;
      when 'lease_start' then
        update public.leases set start_date = start_date - 1 where id = x;
        get diagnostics rc = row_count;
      when 'lease_delete' then
        delete from public.leases where id = x;
        get diagnostics rc = row_count;
      when 'property_insert' then
        insert into public.properties (id, user_id, address) values (md5('rtw-p-step-' || i)::uuid, l, 'Prop new ' || i);
        get diagnostics rc = row_count;
      when 'property_address' then
        update public.properties set address = 'Prop readdressed ' || i where id = p;
        get diagnostics rc = row_count;
      when 'property_landlord' then
        update public.properties set user_id = landlords[1 + floor(random() * array_length(landlords, 1))::int] where id = p;
        get diagnostics rc = row_count;
      when 'property_delete' then
        if random() < 0.4 then
          delete from public.properties where id = p;
          get diagnostics rc = row_count;
        end if;
      when 'profile_enabled' then
        update public.user_profiles set whatsapp_enabled = not whatsapp_enabled, whatsapp_opted_in_at = now() where id = l;
        get diagnostics rc = row_count;
      when 'profile_name' then
        update public.user_profiles set full_name = 'Prop Landlord renamed ' || i where id = l;
        get diagnostics rc = row_count;
      when 'many_tenant_names' then
        update public.tenants set name = left(name, 150) || '.' where user_id = l;
        get diagnostics rc = row_count;
      when 'many_lease_status' then
        update public.leases set status = case status when 'active' then 'ended' else 'active' end
          where property_id in (select pr.id from public.properties pr where pr.user_id = l);
        get diagnostics rc = row_count;
      when 'landlord_insert' then
        if array_length(landlords, 1) < 8 then
          x := tests.create_supabase_user('rt_prop_new_' || i);
          insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at)
          values (x, 'Prop Landlord new ' || i, true, now());
          get diagnostics rc = row_count;
          insert into public.properties (id, user_id, address) values (md5('rtw-p-new-' || i)::uuid, x, 'Prop of new ' || i);
          insert into public.tenants (id, user_id, name, phone)
          values (md5('rtw-t-new-' || i)::uuid, x, 'Prop tenant of new ' || i, phones[1 + (i % 8)]);
        end if;
      when 'landlord_delete' then
        if random() < 0.4 and array_length(landlords, 1) > 5 then
          delete from public.user_profiles where id = l;
          get diagnostics rc = row_count;
        end if;
    end case;
    insert into pg_temp.routing_steps
    select i, op, rc,
           (select count(*) from private.tenant_landlord_routing r
             where r.landlord_id in (select up.id from public.user_profiles up where up.full_name like 'Prop Landlord%')),
           (select count(*) from (select r.tenant_phone from private.tenant_landlord_routing r
                                  join public.user_profiles up on up.id = r.landlord_id and up.full_name like 'Prop Landlord%'
                                  group by r.tenant_phone having count(distinct r.landlord_id) > 1) s),
           tests.routing_diff();
  end loop;
end
$$;

select is((select count(*)::int from routing_steps), 400, 'the random walk ran 400 steps');
select is_empty($$ select step, op, mismatches from routing_steps where mismatches <> 0 $$,
  'after every one of the random steps the table equals its defining query');
select is((select count(distinct op)::int from routing_steps where changed > 0), 21,
  'every one of the 21 kinds of change actually changed rows at least once');
select ok((select avg(routed) >= 4 and max(routed) >= 10 and bool_or(shared > 0) from routing_steps),
  'the random landlords had routing rows throughout, some phones shared by two landlords (not vacuous)');
select set_eq(
  $$ select * from private.tenant_landlord_routing $$,
  $$ select * from private.tenant_landlord_routing_source $$,
  'set_eq: private.tenant_landlord_routing = private.tenant_landlord_routing_source');
select is((select count(*) from private.tenant_landlord_routing), (select count(*) from private.tenant_landlord_routing_source),
  'and it has no duplicate rows');

-- refresh_tenant_landlord_routing(): repair, service role only ------------------------------
-- Damage the table behind the triggers' back, then repair.
delete from private.tenant_landlord_routing where lease_id = (select min(lease_id::text)::uuid from private.tenant_landlord_routing);
update private.tenant_landlord_routing set lease_start_date = '1999-01-01' where tenant_phone = '447400100001';
insert into private.tenant_landlord_routing
  select '447400100999', landlord_id, tenant_id, property_id, gen_random_uuid(), lease_start_date
  from private.tenant_landlord_routing limit 1;
select cmp_ok(tests.routing_diff(), '>', 0::bigint, 'the damaged table differs from its defining query');

-- The expected count is read as postgres: service_role has no privilege on the private view.
select set_config('tests.source_rows', (select count(*) from private.tenant_landlord_routing_source)::text, true);
select tests.authenticate_as_service_role();
select is(public.refresh_tenant_landlord_routing(), current_setting('tests.source_rows')::int,
  'service_role can refresh, which returns the row count of the defining query');
reset role;
select is(tests.routing_diff(), 0::bigint, 'after the refresh the table equals its defining query again');
select is(public.refresh_tenant_landlord_routing(), (select count(*)::int from private.tenant_landlord_routing),
  'a second refresh returns the same count');

select tests.authenticate_as('rt_alice');
select throws_ok('select public.refresh_tenant_landlord_routing()', '42501', null,
  'authenticated cannot refresh the routing table');
select throws_ok('select * from private.tenant_landlord_routing', '42501', null,
  'authenticated cannot read the routing table');
select tests.clear_authentication();
select throws_ok('select public.refresh_tenant_landlord_routing()', '42501', null,
  'anon cannot refresh the routing table');
select throws_ok('select * from private.tenant_landlord_routing', '42501', null,
  'anon cannot read the routing table');
reset role;

select * from finish();
rollback;
