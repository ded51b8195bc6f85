-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P): the routing lookup of
-- public.route_inbound_message alone (the candidates: private.routing_candidates), for the same phones.
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
select private.routing_candidates((:prefix)::text || lpad((:t)::text, 8, '0'));
