-- pgbench (-M prepared; -D samples=N): the landlord's unread total (sum of unread_count),
-- as postgres (no row-level security) with an explicit landlord filter. The same statements as
-- the _rls script (set role / set_config are no-ops here), so transaction latencies compare like for like.
\set k random(1, :samples)
select landlord_id, claims, conversation_id from bench.inbox_samples where k = :k \gset
begin;
set local role postgres;
select set_config('request.jwt.claims', :claims, true);
-- measured query (bench/benchmarks/inbox_rls.py also EXPLAINs this statement)
select coalesce(sum(unread_count), 0) as unread
from public.whatsapp_conversations
where landlord_id = :landlord_id and unread_count > 0;
commit;
