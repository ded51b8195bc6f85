-- Issue 18, step 4: a new message is filed by one AFTER INSERT trigger that bumps its conversation
-- and broadcasts it with the conversation row the bump returned. Before, two triggers ran per
-- routed message (whatsapp_messages_bump_conversation, then whatsapp_messages_publish), and the
-- second read the conversation back to put its counters in the broadcast. Same writes, same
-- broadcasts (60-realtime: exactly one per routed message, on the right topic); updates (statuses,
-- support assignment) keep their triggers.

-- The bump, defined once: the new message's effect on its conversation; returns the row as updated.
create function private.bump_conversation(m public.whatsapp_messages)
returns public.whatsapp_conversations
language plpgsql
set search_path = ''
as $$
declare
  counts_unread boolean := m.is_from_tenant and m.type <> 'reaction';
  preview text := left(coalesce(nullif(btrim(m.body), ''), nullif(btrim(m.media_caption), ''), '[' || m.type || ']'), 160);
  c public.whatsapp_conversations;
begin
  update public.whatsapp_conversations cv set
    unread_count = cv.unread_count + case when counts_unread then 1 else 0 end,
    last_message_at = greatest(cv.last_message_at, m.sent_at),
    last_inbound_at = case when m.is_from_tenant then greatest(cv.last_inbound_at, m.sent_at) else cv.last_inbound_at end,
    last_message_preview = case
      when m.type = 'reaction' then cv.last_message_preview
      when cv.last_message_at is null or m.sent_at >= cv.last_message_at then preview
      else cv.last_message_preview end,
    status = case when m.is_from_tenant and cv.status = 'archived' then 'active' else cv.status end
  where cv.id = m.conversation_id
  returning cv.* into c;
  return c;
end
$$;
comment on function private.bump_conversation(public.whatsapp_messages) is
  'A message filed into a conversation bumps its unread count, last times, preview, and reopens it if archived; '
  'returns the conversation as updated.';

-- A message event with the conversation the caller already holds (null: none).
create function private.message_event(m public.whatsapp_messages, c public.whatsapp_conversations)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object(
    'id', m.id, 'conversation_id', m.conversation_id, 'direction', m.direction, 'is_from_tenant', m.is_from_tenant,
    'type', m.type, 'body', m.body, 'landlord_signature', m.landlord_signature, 'media_mime_type', m.media_mime_type,
    'media_caption', m.media_caption, 'status', m.status, 'sent_at', m.sent_at,
    'conversation', case when c.id is not null then private.conversation_event(c) end);
end
$$;
comment on function private.message_event(public.whatsapp_messages, public.whatsapp_conversations) is
  'The broadcast payload of a message in its conversation (landlord:<uid> topic, event "message").';

create or replace function private.message_event(m public.whatsapp_messages)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return private.message_event(m, (select c from public.whatsapp_conversations c where c.id = m.conversation_id));
end
$$;

create or replace function private.trg_bump_conversation()
returns trigger
language plpgsql
security definer -- updates counters of a conversation the writer may not be allowed to update directly
set search_path = ''
as $$
begin
  perform private.bump_conversation(new);
  return null;
end
$$;

create function private.trg_file_message()
returns trigger
language plpgsql
security definer -- updates the conversation's counters and sends on private topics (writes realtime.messages)
set search_path = ''
as $$
declare
  c public.whatsapp_conversations;
begin
  if new.conversation_id is not null then
    c := private.bump_conversation(new);
  end if;
  if new.user_id is not null then
    return null;   -- multi-WABA history being filed: not news
  end if;
  if new.landlord_id is not null then
    perform realtime.send(private.message_event(new, c), 'message', 'landlord:' || new.landlord_id, true);
  end if;
  if new.is_held then
    perform realtime.send(private.held_event(new), 'held', 'support', true);
  end if;
  return null;
end
$$;
comment on function private.trg_file_message() is
  'Trigger: a new message bumps its conversation and is broadcast with it (landlord topic), or as held (support topic).';

-- Updates only, from now on: a landlord assigned later, a status change, held and resolved.
create or replace function private.trg_publish_message()
returns trigger
language plpgsql
security definer -- sends on private topics (writes realtime.messages)
set search_path = ''
as $$
begin
  if new.user_id is not null then
    return null;   -- multi-WABA history being filed: not news
  end if;
  if new.landlord_id is not null and old.landlord_id is null then
    perform realtime.send(private.message_event(new), 'message', 'landlord:' || new.landlord_id, true);
  elsif new.landlord_id is not null and new.direction = 'outgoing'
        and (new.status, new.delivered_at, new.read_at, new.failed_at) is distinct from (old.status, old.delivered_at, old.read_at, old.failed_at) then
    perform realtime.send(jsonb_build_object('id', new.id, 'conversation_id', new.conversation_id, 'status', new.status,
                                             'delivered_at', new.delivered_at, 'read_at', new.read_at,
                                             'failed_at', new.failed_at, 'error_code', new.error_code),
                          'message_status', 'landlord:' || new.landlord_id, true);
  end if;
  if new.is_held and not old.is_held then
    perform realtime.send(private.held_event(new), 'held', 'support', true);
  elsif old.is_held and not new.is_held then
    perform realtime.send(private.held_event(new), 'resolved', 'support', true);
  end if;
  return null;
end
$$;
comment on function private.trg_publish_message() is
  'Trigger: broadcast a message given its landlord later, a status change, and held/resolved messages.';

drop trigger whatsapp_messages_bump_conversation on public.whatsapp_messages;
drop trigger whatsapp_messages_publish on public.whatsapp_messages;
create trigger whatsapp_messages_file after insert on public.whatsapp_messages
  for each row execute function private.trg_file_message();
create trigger whatsapp_messages_publish after update of landlord_id, routing_status, status, delivered_at, read_at, failed_at
  on public.whatsapp_messages for each row execute function private.trg_publish_message();
