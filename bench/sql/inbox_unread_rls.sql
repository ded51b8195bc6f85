-- pgbench (-M prepared; -D samples=N): the landlord's unread total (sum of unread_count),
-- as a landlord through the Data API would run it: role authenticated with the landlord's JWT
-- claims, row-level security doing the filtering.
\set k random(1, :samples)
select landlord_id, claims, conversation_id from bench.inbox_samples where k = :k \gset
begin;
set local role authenticated;
select set_config('request.jwt.claims', :claims, true);
-- measured query (bench/benchmarks/inbox_rls.py also EXPLAINs this statement)
select coalesce(sum(unread_count), 0) as unread
from public.whatsapp_conversations
where unread_count > 0;
commit;
