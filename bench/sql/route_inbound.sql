-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P): one inbound text message, as Meta sends
-- it, from a random generated tenant phone (P% from numbers nobody has), with a fresh wamid.
-- Phones follow bench/sql/world_base.sql: tenant t has '4477' || lpad(t, 8, '0'); tenants without
-- a phone (t % 20 = 0) are replaced by their neighbour, and t % 100 = 2 picks the shared phone.
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
\set b random(1, 8)
select public.route_inbound_message(
  jsonb_build_object('from', p.phone, 'id', 'wamid.HBgM' || upper(replace(gen_random_uuid()::text, '-', '')),
                     'timestamp', extract(epoch from now())::bigint::text, 'type', 'text',
                     'text', jsonb_build_object('body', (array['Hi, the boiler is making a strange noise again.',
                       'Rent sent this morning, thanks!',
                       'Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.',
                       'Ok', 'What day is the inspection?',
                       'The front door lock is sticking, could you send someone this week please?',
                       'Thanks, see you then', 'Is it ok if my sister stays for two weeks in March?'])[:b])),
  jsonb_build_object('profile', jsonb_build_object('name', 'Tenant ' || :t), 'wa_id', p.phone),
  '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'::jsonb)
from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone) p;
