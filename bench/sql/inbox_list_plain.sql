-- pgbench (-M prepared; -D samples=N): list the landlord's 50 most recent conversations,
-- as postgres (no row-level security) with an explicit landlord filter. The same statements as
-- the _rls script (set role / set_config are no-ops here), so transaction latencies compare like for like.
\set k random(1, :samples)
select landlord_id, claims, conversation_id from bench.inbox_samples where k = :k \gset
begin;
set local role postgres;
select set_config('request.jwt.claims', :claims, true);
-- measured query (bench/benchmarks/inbox_rls.py also EXPLAINs this statement)
select id, tenant_id, tenant_phone, property_id, status, unread_count, last_message_at, last_inbound_at, last_message_preview
from public.whatsapp_conversations
where landlord_id = :landlord_id
order by last_message_at desc nulls last, id desc
limit 50;
commit;
