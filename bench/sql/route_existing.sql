-- pgbench (-M prepared; -D existing=N): one inbound text message into an existing conversation:
-- a phone with one candidate landlord, who has opted in and already talks with the tenant (a
-- confirmed link), drawn at random from bench.existing_phones (bench/sql/world_finish.sql).
\set k random(1, :existing)
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
  jsonb_build_object('profile', jsonb_build_object('name', 'Tenant ' || :k), 'wa_id', p.phone),
  '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'::jsonb)
from bench.existing_phones p where p.n = :k;
