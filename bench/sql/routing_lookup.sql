-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P): the routing lookup of
-- public.route_inbound_message alone (step 4, "candidates"), for the same phones.
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
select coalesce(jsonb_agg(x order by x.landlord_id), '[]'), count(*),
       count(*) filter (where x.conversation_status is distinct from 'blocked')
from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone) p
cross join lateral (
  select distinct on (r.landlord_id)
         r.landlord_id, r.landlord_name, r.landlord_whatsapp_enabled as enabled,
         r.tenant_id, r.tenant_name, r.property_id, r.property_address,
         (select cv.status from public.whatsapp_conversations cv
           where cv.landlord_id = r.landlord_id and cv.tenant_phone = p.phone) as conversation_status
  from private.tenant_landlord_routing r
  where r.tenant_phone = p.phone
  order by r.landlord_id, r.lease_start_date desc, r.lease_id
) x;
