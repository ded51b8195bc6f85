-- pgbench (-M prepared; -D samples=N): the 50 newest messages of one of the landlord's conversations,
-- as postgres (no row-level security) with an explicit landlord filter. The same statements as
-- the _rls script (set role / set_config are no-ops here), so transaction latencies compare like for like.
\set k random(1, :samples)
select landlord_id, claims, conversation_id from bench.inbox_samples where k = :k \gset
begin;
set local role postgres;
select set_config('request.jwt.claims', :claims, true);
-- measured query (bench/benchmarks/inbox_rls.py also EXPLAINs this statement)
select id, conversation_id, direction, is_from_tenant, type, body, landlord_signature, media_id, media_mime_type,
       media_caption, reply_to_message_id, contact_name, status, sent_at, delivered_at, read_at, failed_at, error_title
from public.whatsapp_messages
where conversation_id = :conversation_id and landlord_id = :landlord_id
order by sent_at desc, id desc
limit 50;
commit;
