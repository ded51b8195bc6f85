-- pgbench (-M prepared): the first inbound message of a new conversation: each transaction takes
-- the next phone of bench.new_phones (one candidate landlord, opted in, no conversation yet); the
-- run fails loudly (22023, no from) once the pool is used up.
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
  jsonb_build_object('profile', jsonb_build_object('name', 'Tenant'), 'wa_id', p.phone),
  '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'::jsonb)
from (select coalesce((select n.phone from bench.new_phones n where n.n = (select nextval('bench.new_phone_seq'))), '') as phone) p;
