-- pgbench (-M prepared; -D samples=N): list the landlord's 50 most recent conversations,
-- as a landlord through the Data API would run it: role authenticated with the landlord's JWT
-- claims, row-level security doing the filtering.
\set k random(1, :samples)
select landlord_id, claims, conversation_id from bench.inbox_samples where k = :k \gset
begin;
set local role authenticated;
select set_config('request.jwt.claims', :claims, true);
-- measured query (bench/benchmarks/inbox_rls.py also EXPLAINs this statement)
select id, tenant_id, tenant_phone, property_id, status, unread_count, last_message_at, last_inbound_at, last_message_preview
from public.whatsapp_conversations
order by last_message_at desc nulls last, id desc
limit 50;
commit;
