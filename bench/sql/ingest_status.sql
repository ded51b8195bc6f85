-- pgbench (-M prepared): one status webhook, as Meta sends them for a reply: each transaction takes
-- the next number n of bench.status_seq and reports status sent, delivered, read (n mod 3) for
-- outgoing message 1 + (n - 1) / 3 of bench.status_targets (webhook_http.py makes them), handed
-- straight to public.ingest_whatsapp_webhook. With several clients the three statuses of one
-- message may arrive together or out of order, as they do from Meta.
select public.ingest_whatsapp_webhook(jsonb_build_object(
  'object', 'whatsapp_business_account',
  'entry', jsonb_build_array(jsonb_build_object('id', '102290129340398', 'changes', jsonb_build_array(jsonb_build_object(
    'field', 'messages',
    'value', jsonb_build_object(
      'messaging_product', 'whatsapp',
      'metadata', '{"display_phone_number": "447700000000", "phone_number_id": "100000000000001"}'::jsonb,
      'statuses', jsonb_build_array(jsonb_build_object(
        'id', t.wamid, 'status', (array['sent', 'delivered', 'read'])[1 + (s.n - 1) % 3],
        'timestamp', extract(epoch from now())::bigint::text, 'recipient_id', t.phone,
        'conversation', jsonb_build_object('id', md5(t.wamid), 'origin', jsonb_build_object('type', 'service')),
        'pricing', jsonb_build_object('billable', true, 'pricing_model', 'PMP', 'category', 'service'))))))))))
from (select nextval('bench.status_seq') as n) s
join bench.status_targets t on t.k = 1 + (s.n - 1) / 3;
