-- Why: a lease joins a tenant and a property of one landlord. RLS lets a landlord add a lease
-- only for their own tenant and property, but the service role and later moves of a tenant or
-- property could still join two landlords' rows; routing would then file one landlord's
-- tenant's messages with another. This trigger refuses that for every writer.

create function private.trg_lease_same_landlord()
returns trigger
language plpgsql
security definer -- compares owners of rows the caller may not see
set search_path = ''
as $$
begin
  if (select t.user_id from public.tenants t where t.id = new.tenant_id)
     is distinct from (select p.user_id from public.properties p where p.id = new.property_id) then
    raise exception using errcode = '42501', detail = 'not_allowed',
      message = 'a lease must join a tenant and a property of the same landlord',
      hint = 'create the tenant under the landlord who owns the property';
  end if;
  return new;
end
$$;
comment on function private.trg_lease_same_landlord() is 'Trigger: a lease''s tenant and property belong to one landlord (42501).';

create trigger leases_same_landlord before insert or update of tenant_id, property_id on public.leases
  for each row execute function private.trg_lease_same_landlord();
