-- pgbench (-M prepared; -D tenants=N): a landlord changes a tenant's phone number (the number
-- moves between the 4477 and 4476 ranges, so the normalized key really changes).
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 else :t end
update public.tenants
set phone = case when phone_e164 like '4477%' then '+44 76' else '+44 77' end || substr(phone_e164, 5)
where id = bench.uid(2, :t);
