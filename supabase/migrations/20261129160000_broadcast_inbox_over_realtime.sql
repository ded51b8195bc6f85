-- Why: landlords expect a tenant's message to appear in their inbox as it arrives, and support
-- a held message in the queue. Postgres Changes (the supabase_realtime publication) shipped every
-- column of both inbox tables to Realtime's filter and checked each change against every
-- subscriber on one thread; nothing proved who received what. Instead, Broadcast from the
-- database: triggers send one event per change to a private topic, and RLS on realtime.messages
-- decides who may join it.
--   * Topics: `landlord:<user id>` (each landlord's own), `support` (support staff).
--   * Events on landlord:<id>: `message` (filed or sent in one of their conversations, with the
--     conversation's counters), `message_status` (sent, delivered, read, failed), `conversation`
--     (marked read, archived, blocked, opened). On support: `held` and `resolved`. Payloads carry
--     ids and what an inbox list shows: never raw, routing metadata or another landlord's data.
--   * Joining: a landlord may read only their own topic, support only `support`, anon nothing;
--     nobody may send from a client (no insert policy).
--   * The broadcast replaces the notification queue and pg_notify (the same purpose: tell the
--     landlord now), so a routed message writes no more rows than before.
-- Migrations create policies on realtime.messages and call realtime.send(); they create nothing
-- in schema realtime (hosted Supabase owns it; supabase/local/realtime.sql recreates it locally).

alter publication supabase_realtime drop table public.whatsapp_messages, public.whatsapp_conversations;

create policy "landlords and support receive their own topic" on realtime.messages
  for select to authenticated
  using (
    extension = 'broadcast'
    and ((select realtime.topic()) = 'landlord:' || (select auth.uid())::text
         or ((select realtime.topic()) = 'support' and (select private.is_support())))
  );

-- What a landlord's inbox shows of a message, with its conversation's counters after it.
create function private.message_event(m public.whatsapp_messages)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'id', m.id, 'conversation_id', m.conversation_id, 'direction', m.direction, 'is_from_tenant', m.is_from_tenant,
    'type', m.type, 'body', m.body, 'landlord_signature', m.landlord_signature, 'media_mime_type', m.media_mime_type,
    'media_caption', m.media_caption, 'status', m.status, 'sent_at', m.sent_at,
    'conversation', (select jsonb_build_object('id', c.id, 'tenant_phone', c.tenant_phone, 'status', c.status,
                                               'unread_count', c.unread_count, 'last_message_at', c.last_message_at,
                                               'last_message_preview', c.last_message_preview)
                     from public.whatsapp_conversations c where c.id = m.conversation_id))
$$;
comment on function private.message_event(public.whatsapp_messages) is
  'The `message` broadcast payload: the message as an inbox shows it, and its conversation''s counters.';

create function private.conversation_event(c public.whatsapp_conversations)
returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('id', c.id, 'tenant_phone', c.tenant_phone, 'status', c.status, 'unread_count', c.unread_count,
                            'last_message_at', c.last_message_at, 'last_message_preview', c.last_message_preview)
$$;
comment on function private.conversation_event(public.whatsapp_conversations) is 'The `conversation` broadcast payload.';

create function private.held_event(m public.whatsapp_messages)
returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('id', m.id, 'routing_status', m.routing_status, 'tenant_phone', m.tenant_phone,
                            'sent_at', m.sent_at, 'preview', left(coalesce(m.body, m.media_caption, '[' || m.type || ']'), 160))
$$;
comment on function private.held_event(public.whatsapp_messages) is 'The `held` / `resolved` broadcast payload for support.';

-- After the counters (triggers fire in name order: ..._bump_conversation before ..._publish).
create function private.trg_publish_message()
returns trigger
language plpgsql
security definer -- sends on private topics (writes realtime.messages) whoever filed the message
set search_path = ''
as $$
begin
  if new.user_id is not null then
    return null;   -- multi-WABA history being filed: not news
  end if;
  if new.landlord_id is not null
     and (tg_op = 'INSERT' or old.landlord_id is null) then
    perform realtime.send(private.message_event(new), 'message', 'landlord:' || new.landlord_id, true);
  elsif tg_op = 'UPDATE' and new.landlord_id is not null and new.direction = 'outgoing'
        and (new.status, new.delivered_at, new.read_at, new.failed_at) is distinct from (old.status, old.delivered_at, old.read_at, old.failed_at) then
    perform realtime.send(jsonb_build_object('id', new.id, 'conversation_id', new.conversation_id, 'status', new.status,
                                             'delivered_at', new.delivered_at, 'read_at', new.read_at,
                                             'failed_at', new.failed_at, 'error_code', new.error_code),
                          'message_status', 'landlord:' || new.landlord_id, true);
  end if;
  if new.is_held and (tg_op = 'INSERT' or not old.is_held) then
    perform realtime.send(private.held_event(new), 'held', 'support', true);
  elsif tg_op = 'UPDATE' and old.is_held and not new.is_held then
    perform realtime.send(private.held_event(new), 'resolved', 'support', true);
  end if;
  return null;
end
$$;
comment on function private.trg_publish_message() is
  'Trigger: broadcast a filed message, a status change and held/resolved messages on their private topics.';

create trigger whatsapp_messages_publish after insert or update of landlord_id, routing_status, status, delivered_at, read_at, failed_at
  on public.whatsapp_messages for each row execute function private.trg_publish_message();

create function private.trg_publish_conversation()
returns trigger
language plpgsql
security definer -- sends on the landlord's private topic (writes realtime.messages)
set search_path = ''
as $$
begin
  perform realtime.send(private.conversation_event(new), 'conversation', 'landlord:' || new.landlord_id, true);
  return null;
end
$$;
comment on function private.trg_publish_conversation() is
  'Trigger: broadcast a conversation read, archived, blocked or reopened (message counters travel with `message`).';

-- A message's own bump (and the conversation a first message opens) travels with its `message`
-- event, which carries the conversation. What a landlord does to a conversation (read, archive,
-- block, unblock) is news of its own.
create trigger whatsapp_conversations_publish after update of unread_count, status on public.whatsapp_conversations
  for each row when (new.unread_count < old.unread_count or new.status is distinct from old.status)
  execute function private.trg_publish_conversation();

-- The broadcast replaces the notification queue and pg_notify.
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-column
drop trigger whatsapp_messages_notify_landlord on public.whatsapp_messages;
drop trigger whatsapp_messages_notify_landlord_on_assign on public.whatsapp_messages;
drop function private.trg_notify_landlord();
drop function public.claim_landlord_notifications(integer);
drop table private.landlord_notifications;
alter table private.whatsapp_settings drop column notify_listeners;
comment on column public.user_profiles.whatsapp_notifications_enabled is
  'The landlord wants to be notified (push, e-mail) of new tenant messages; live inbox events go out regardless.';
