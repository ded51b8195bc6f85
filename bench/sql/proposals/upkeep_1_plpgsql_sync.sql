-- Upkeep proposal 1 (benchmarked by bench/run.py in the scratch database only; not a migration).
-- Why: private.routing_sync_lease/tenant/property are `language sql` functions with two
-- statements. PostgreSQL 15 does not cache plans of SQL functions across calls: every call
-- parses and plans the delete and the insert ... select from the four-table view again (about
-- 700 buffer hits of catalog lookups, ~1-2 ms), while executing them takes ~0.05 ms. Each lease
-- change pays that through trg_routing_leases(). The same bodies in plpgsql keep their plans
-- for the session.

create or replace function private.routing_sync_lease(lease_id uuid)
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

create or replace function private.routing_sync_tenant(tenant_id uuid)
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

create or replace function private.routing_sync_property(property_id uuid)
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
revoke execute on function private.routing_sync_lease(uuid), private.routing_sync_tenant(uuid),
  private.routing_sync_property(uuid) from public;
