-- pgbench (-M prepared; -D tenants=N): a landlord corrects a tenant's name.
\set t random(1, :tenants)
\set v random(1, 1000000)
update public.tenants set name = 'Tenant ' || (:t)::text || ' v' || (:v)::text
where id = bench.uid(2, :t);
