-- pgbench (-M prepared; -D tenants=N): a lease ends, or (for an ended or pending one) becomes active.
\set t random(1, :tenants)
update public.leases
set status = case when status = 'active' then 'ended' else 'active' end,
    end_date = case when status = 'active' then start_date + 400 end
where id = bench.uid(4, :t);
