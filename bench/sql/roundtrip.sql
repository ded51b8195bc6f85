-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P): the floor every call pays (protocol round
-- trip, commit of a read-only transaction, the phone expression), with no work.
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
select p.phone
from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone) p;
