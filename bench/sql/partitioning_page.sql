-- pgbench (-M prepared; -D samples=N): the 50 newest messages of a conversation, as the landlord
-- client asks for them (no time bound), in the layout of the connection's search_path.
\set k random(1, :samples)
select conversation_id from bench.samples where k = :k \gset
-- measured query
select id, conversation_id, direction, is_from_tenant, type, body, landlord_signature, media_id, media_mime_type,
       media_caption, reply_to_message_id, contact_name, status, sent_at, delivered_at, read_at, failed_at, error_title
from messages
where conversation_id = :conversation_id
order by sent_at desc, id desc
limit 50;
