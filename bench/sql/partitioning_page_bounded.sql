-- pgbench (-M prepared; -D samples=N): the 50 newest messages of a conversation within the last
-- 90 days, in the layout of the connection's search_path. The created_at bound is implied by the
-- sent_at one (a row's created_at is at most 30 days after its sent_at: routing takes Meta's
-- timestamp only within 30 days of now) and is what lets the partitioned table prune; the client
-- would ask again without the bound when it gets fewer than 50.
\set k random(1, :samples)
select conversation_id from bench.samples where k = :k \gset
-- measured query
select id, conversation_id, direction, is_from_tenant, type, body, landlord_signature, media_id, media_mime_type,
       media_caption, reply_to_message_id, contact_name, status, sent_at, delivered_at, read_at, failed_at, error_title
from messages
where conversation_id = :conversation_id and sent_at > now() - interval '90 days'
  and created_at > now() - interval '120 days'
order by sent_at desc, id desc
limit 50;
