-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P -D pad=W): the cost floor of storing one
-- message durably. The same message JSON as route_inbound.sql, built the same way, inserted as
-- one row into a plain table whose only index is the unique wamid; pad makes the row as wide as
-- a routed whatsapp_messages row (measured in the same run).
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
\set b random(1, 8)
insert into bench.baseline_insert (wamid, raw, pad)
select j ->> 'id', j, repeat('x', :pad)
from (select jsonb_build_object('from', p.phone, 'id', 'wamid.HBgM' || upper(replace(gen_random_uuid()::text, '-', '')),
                     'timestamp', extract(epoch from now())::bigint::text, 'type', 'text',
                     'text', jsonb_build_object('body', (array['Hi, the boiler is making a strange noise again.',
                       'Rent sent this morning, thanks!',
                       'Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.',
                       'Ok', 'What day is the inspection?',
                       'The front door lock is sticking, could you send someone this week please?',
                       'Thanks, see you then', 'Is it ok if my sister stays for two weeks in March?'])[:b])) as j
      from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone) p) x;
