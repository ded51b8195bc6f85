-- pgbench (-M prepared; -D samples=N): the 50 messages before a keyset cursor (a random message of
-- the conversation), in the layout of the connection's search_path, with the redundant bound
-- created_at < cursor + 30 days (see partitioning_page_bounded.sql) that lets a partitioned table
-- skip the newer months.
\set k random(1, :samples)
select conversation_id, deep_at, deep_id from bench.samples where k = :k \gset
-- measured query
select id, conversation_id, direction, is_from_tenant, type, body, landlord_signature, media_id, media_mime_type,
       media_caption, reply_to_message_id, contact_name, status, sent_at, delivered_at, read_at, failed_at, error_title
from messages
where conversation_id = :conversation_id and (sent_at, id) < (:deep_at, :deep_id)
  and created_at < :deep_at::timestamptz + interval '30 days'
order by sent_at desc, id desc
limit 50;
