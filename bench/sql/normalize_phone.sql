-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P): private.normalize_phone of the sender,
-- as route_inbound_message computes it, for the same phones.
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
select private.normalize_phone('+' || p.phone, 'GB')
from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone) p;
