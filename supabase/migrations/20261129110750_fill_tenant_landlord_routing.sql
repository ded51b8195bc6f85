-- Why (data step): the routing table starts as its defining query over the existing tenants,
-- leases, properties and profiles; from here on the triggers keep it exact.

select public.refresh_tenant_landlord_routing();
