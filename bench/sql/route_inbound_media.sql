-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P -D media_pct=M): route_inbound.sql's inbound
-- message from the same senders, but M% of them a photo as Meta's webhook carries one: a media id,
-- image/jpeg, its SHA-256 (base64) and a caption. Routing stores it like text and queues its
-- download (one private.media_jobs row) in the same transaction; the download itself is the media
-- worker's, later (bench/benchmarks/media_worker.py).
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
\set b random(1, 8)
\set photo case when random(1, 100) <= :media_pct then 1 else 0 end
\set media_id random(1000000000000000, 9999999999999999)
select public.route_inbound_message(
  jsonb_build_object('from', p.phone, 'id', 'wamid.HBgM' || upper(replace(gen_random_uuid()::text, '-', '')),
                     'timestamp', extract(epoch from now())::bigint::text)
  || case when (:photo)::int = 1
       then jsonb_build_object('type', 'image', 'image', jsonb_build_object(
              'caption', p.text, 'mime_type', 'image/jpeg', 'id', (:media_id)::text,
              'sha256', 'n0Aj7W0L9P0Vx0n6GJt9mK2ZkB3Gx1t9n2Jk3lqQ+8s='))
       else jsonb_build_object('type', 'text', 'text', jsonb_build_object('body', p.text)) end,
  jsonb_build_object('profile', jsonb_build_object('name', 'Tenant ' || :t), 'wa_id', p.phone),
  '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'::jsonb)
from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone,
             (array['Hi, the boiler is making a strange noise again.',
                    'Rent sent this morning, thanks!',
                    'Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.',
                    'Ok', 'What day is the inspection?',
                    'The front door lock is sticking, could you send someone this week please?',
                    'Thanks, see you then', 'Is it ok if my sister stays for two weeks in March?'])[:b] as text) p;
