-- pgbench (-M prepared; -D samples=N): a deep page (keyset cursor in the middle of a long conversation) of 50 messages,
-- as a landlord through the Data API would run it: role authenticated with the landlord's JWT
-- claims, row-level security doing the filtering.
\set k random(1, :samples)
select landlord_id, claims, conversation_id, deep_at, deep_id from bench.deep_samples where k = :k \gset
begin;
set local role authenticated;
select set_config('request.jwt.claims', :claims, true);
-- measured query (bench/benchmarks/inbox_rls.py also EXPLAINs this statement)
select id, conversation_id, direction, is_from_tenant, type, body, landlord_signature, media_id, media_mime_type,
       media_caption, reply_to_message_id, contact_name, status, sent_at, delivered_at, read_at, failed_at, error_title
from public.whatsapp_messages
where conversation_id = :conversation_id and (sent_at, id) < (:deep_at, :deep_id)
order by sent_at desc, id desc
limit 50;
commit;
