-- pgbench (-M prepared; -D samples=N): one message by id (the landlord client's get_message, the
-- foreign keys that point at whatsapp_messages(id)), in the layout of the connection's search_path.
\set k random(1, :samples)
select message_id from bench.samples where k = :k \gset
-- measured query
select id, conversation_id, direction, is_from_tenant, type, body, landlord_signature, media_id, media_mime_type,
       media_caption, reply_to_message_id, contact_name, status, sent_at, delivered_at, read_at, failed_at, error_title
from messages
where id = :message_id;
