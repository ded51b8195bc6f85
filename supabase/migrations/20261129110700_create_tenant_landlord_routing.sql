-- Why: the router must find every landlord with an active lease for a phone in one index probe.
-- The original design's materialized view had to be fully refreshed on every change (O(all
-- tenants), locking), could not hold one phone with two landlords (unique index on phone) and,
-- in public, leaked every tenant's phone (no RLS on materialized views). Instead: a table in
-- private, one row per active lease, kept exact incrementally in the same transaction by
-- triggers on leases, tenants, properties and user_profiles. A change costs what it touches.

create table private.tenant_landlord_routing (
  lease_id uuid primary key,
  tenant_phone text not null,
  tenant_id uuid not null,
  tenant_name text not null,
  landlord_id uuid not null,
  landlord_name text not null,
  landlord_whatsapp_enabled boolean not null,
  property_id uuid not null,
  property_address text not null,
  lease_status text not null,
  lease_start_date date not null
);
comment on table private.tenant_landlord_routing is
  'Routing candidates: one row per active lease of a tenant with a phone. Exactly private.tenant_landlord_routing_source, kept by triggers.';
create index tenant_landlord_routing_phone_idx on private.tenant_landlord_routing (tenant_phone) include (landlord_id);
create index tenant_landlord_routing_tenant_idx on private.tenant_landlord_routing (tenant_id);
create index tenant_landlord_routing_property_idx on private.tenant_landlord_routing (property_id);
create index tenant_landlord_routing_landlord_idx on private.tenant_landlord_routing (landlord_id);
alter table private.tenant_landlord_routing enable row level security;
revoke all on private.tenant_landlord_routing from public, anon, authenticated, service_role;

-- The defining query. The table must always equal it (tested after random changes).
create view private.tenant_landlord_routing_source with (security_invoker = true) as
  select l.id as lease_id, t.phone_e164 as tenant_phone, t.id as tenant_id, t.name as tenant_name,
         p.user_id as landlord_id, up.full_name as landlord_name, up.whatsapp_enabled as landlord_whatsapp_enabled,
         p.id as property_id, p.address as property_address, l.status as lease_status, l.start_date as lease_start_date
  from public.leases l
  join public.tenants t on t.id = l.tenant_id
  join public.properties p on p.id = l.property_id and p.user_id = t.user_id
  join public.user_profiles up on up.id = p.user_id
  where l.status = 'active' and t.phone_e164 is not null;
revoke all on private.tenant_landlord_routing_source from public, anon, authenticated, service_role;

-- Re-derive the rows of one key from the defining query. plpgsql, not sql: PostgreSQL 15 plans a
-- SQL function's statements again on every call (~1-2 ms of catalog work for a 0.05 ms change);
-- plpgsql keeps the plans for the session (docs/benchmarks.md, routing upkeep).
create function private.routing_sync_lease(lease_id uuid)
returns void
language plpgsql
security definer -- writes the private routing table on behalf of whoever changed a lease
set search_path = ''
as $$
begin
  delete from private.tenant_landlord_routing r where r.lease_id = routing_sync_lease.lease_id;
  insert into private.tenant_landlord_routing
    select * from private.tenant_landlord_routing_source s where s.lease_id = routing_sync_lease.lease_id;
end
$$;

create function private.routing_sync_tenant(tenant_id uuid)
returns void
language plpgsql
security definer -- writes the private routing table on behalf of whoever changed a tenant
set search_path = ''
as $$
begin
  delete from private.tenant_landlord_routing r where r.tenant_id = routing_sync_tenant.tenant_id;
  insert into private.tenant_landlord_routing
    select * from private.tenant_landlord_routing_source s where s.tenant_id = routing_sync_tenant.tenant_id;
end
$$;

create function private.routing_sync_property(property_id uuid)
returns void
language plpgsql
security definer -- writes the private routing table on behalf of whoever changed a property
set search_path = ''
as $$
begin
  delete from private.tenant_landlord_routing r where r.property_id = routing_sync_property.property_id;
  insert into private.tenant_landlord_routing
    select * from private.tenant_landlord_routing_source s where s.property_id = routing_sync_property.property_id;
end
$$;

-- Trigger functions: the cheapest exact update for each kind of change.
create function private.trg_routing_leases()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') and (tg_op = 'DELETE' or old.id is distinct from new.id) then
    delete from private.tenant_landlord_routing r where r.lease_id = old.id;
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    perform private.routing_sync_lease(new.id);
  end if;
  return null;
end
$$;

create function private.trg_routing_tenants()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    delete from private.tenant_landlord_routing r where r.tenant_id = old.id;
  elsif tg_op = 'UPDATE' and new.user_id = old.user_id and new.id = old.id then
    -- name or phone only: rewrite in place
    update private.tenant_landlord_routing r
      set tenant_phone = new.phone_e164, tenant_name = new.name
      where r.tenant_id = new.id and new.phone_e164 is not null;
    if new.phone_e164 is null or old.phone_e164 is null then
      perform private.routing_sync_tenant(new.id);
    end if;
  else
    if tg_op = 'UPDATE' and new.id <> old.id then
      delete from private.tenant_landlord_routing r where r.tenant_id = old.id;
    end if;
    perform private.routing_sync_tenant(new.id);
  end if;
  return null;
end
$$;

create function private.trg_routing_properties()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    delete from private.tenant_landlord_routing r where r.property_id = old.id;
  elsif new.user_id = old.user_id and new.id = old.id then
    update private.tenant_landlord_routing r set property_address = new.address where r.property_id = new.id;
  else
    delete from private.tenant_landlord_routing r where r.property_id = old.id;
    perform private.routing_sync_property(new.id);
  end if;
  return null;
end
$$;

create function private.trg_routing_user_profiles()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
begin
  update private.tenant_landlord_routing r
    set landlord_name = new.full_name, landlord_whatsapp_enabled = new.whatsapp_enabled
    where r.landlord_id = new.id;
  return null;
end
$$;

comment on function private.routing_sync_lease(uuid) is 'Re-derive the routing rows of one lease from the defining query.';
comment on function private.routing_sync_tenant(uuid) is 'Re-derive the routing rows of one tenant from the defining query.';
comment on function private.routing_sync_property(uuid) is 'Re-derive the routing rows of one property from the defining query.';
comment on function private.trg_routing_leases() is 'Trigger: keep the routing table exact after a lease change.';
comment on function private.trg_routing_tenants() is 'Trigger: keep the routing table exact after a tenant change.';
comment on function private.trg_routing_properties() is 'Trigger: keep the routing table exact after a property change.';
comment on function private.trg_routing_user_profiles() is 'Trigger: keep landlord name and opt-in in the routing table current.';

create trigger leases_routing after insert or delete or update of tenant_id, property_id, status, start_date, id
  on public.leases for each row execute function private.trg_routing_leases();
create trigger tenants_routing after delete or update of phone, phone_e164, name, user_id, id
  on public.tenants for each row execute function private.trg_routing_tenants();
create trigger properties_routing after delete or update of address, user_id, id
  on public.properties for each row execute function private.trg_routing_properties();
create trigger user_profiles_routing after update of full_name, whatsapp_enabled
  on public.user_profiles for each row
  when (old.full_name is distinct from new.full_name or old.whatsapp_enabled is distinct from new.whatsapp_enabled)
  execute function private.trg_routing_user_profiles();

-- Repair: rebuild from the defining query. The next migration fills the table.
create function public.refresh_tenant_landlord_routing()
returns integer
language plpgsql
security definer -- rewrites the private routing table; service_role only
set search_path = ''
as $$
declare
  n integer;
begin
  -- Rows that differ from the defining query go, missing ones come: a repair touches only what
  -- is wrong (and no unqualified DELETE, which hosted Supabase's pg-safeupdate refuses).
  -- EXCLUSIVE: routers keep reading while it runs; writers wait.
  lock table private.tenant_landlord_routing in exclusive mode;
  delete from private.tenant_landlord_routing r
  where r.lease_id in (select x.lease_id from (select * from private.tenant_landlord_routing
                                               except select * from private.tenant_landlord_routing_source) x);
  insert into private.tenant_landlord_routing
    select * from private.tenant_landlord_routing_source except select * from private.tenant_landlord_routing;
  select count(*) into n from private.tenant_landlord_routing;
  return n;
end
$$;
comment on function public.refresh_tenant_landlord_routing() is
  'Service role: rebuild private.tenant_landlord_routing from its defining query (repair only; triggers keep it exact). Returns the row count.';
revoke execute on function public.refresh_tenant_landlord_routing() from public, anon, authenticated;
grant execute on function public.refresh_tenant_landlord_routing() to service_role;

-- TRUNCATE fires no row triggers: rebuild after one.
create function private.trg_routing_rebuild()
returns trigger
language plpgsql
security definer -- rewrites the private routing table
set search_path = ''
as $$
begin
  perform public.refresh_tenant_landlord_routing();
  return null;
end
$$;

comment on function private.trg_routing_rebuild() is 'Trigger: rebuild the routing table after a TRUNCATE of a table it derives from.';

create trigger leases_routing_truncate after truncate on public.leases
  for each statement execute function private.trg_routing_rebuild();
create trigger tenants_routing_truncate after truncate on public.tenants
  for each statement execute function private.trg_routing_rebuild();
create trigger properties_routing_truncate after truncate on public.properties
  for each statement execute function private.trg_routing_rebuild();
create trigger user_profiles_routing_truncate after truncate on public.user_profiles
  for each statement execute function private.trg_routing_rebuild();

