-- pgbench (-M prepared; -D tenants=N -D unknown_pct=P): one webhook body with one inbound text
-- message, exactly as bench/benchmarks/webhook_http.py signs and POSTs it to the service, handed
-- straight to public.ingest_whatsapp_webhook: the service's database work without its HTTP.
-- Senders are drawn as in route_inbound.sql.
\set t random(1, :tenants)
\set t case when :t % 20 = 0 then :t - 1 when :t % 100 = 2 then :t - 1 else :t end
\set u random(1, 100)
\set prefix case when :u <= :unknown_pct then 4478 else 4477 end
\set b random(1, 8)
select public.ingest_whatsapp_webhook(jsonb_build_object(
  'object', 'whatsapp_business_account',
  'entry', jsonb_build_array(jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
    'field', 'messages',
    'value', jsonb_build_object(
      'messaging_product', 'whatsapp',
      'metadata', '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'::jsonb,
      'contacts', jsonb_build_array(jsonb_build_object('profile', jsonb_build_object('name', 'Tenant ' || :t), 'wa_id', p.phone)),
      'messages', jsonb_build_array(jsonb_build_object(
        'from', p.phone, 'id', 'wamid.HBgM' || upper(replace(gen_random_uuid()::text, '-', '')),
        'timestamp', extract(epoch from now())::bigint::text, 'type', 'text',
        'text', jsonb_build_object('body', (array['Hi, the boiler is making a strange noise again.',
          'Rent sent this morning, thanks!',
          'Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.',
          'Ok', 'What day is the inspection?',
          'The front door lock is sticking, could you send someone this week please?',
          'Thanks, see you then', 'Is it ok if my sister stays for two weeks in March?'])[:b]))))))))))
from (select (:prefix)::text || lpad((:t)::text, 8, '0') as phone) p;
