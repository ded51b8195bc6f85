-- Issue 18, step 3: the CHECK constraints of the two tables every routed message writes, each
-- table's in one constraint that calls one immutable function. PostgreSQL 15 reads every CHECK
-- constraint's stored expression back from text (stringToNode) and plans it again on every INSERT
-- or UPDATE statement it runs (ExecConstraints, per executor start): for the 10 checks of
-- whatsapp_messages and the 5 of whatsapp_conversations that was 10 % of the instructions of a
-- routed message (callgrind, docs/benchmarks.md section 1). A function call is read in one step
-- and its body is planned once per session. The rules are the same, one by one: each
-- `(...) is not false` is one former constraint (a CHECK passes on null, so does each line).
-- Added NOT VALID here (no scan under the ACCESS EXCLUSIVE lock of ALTER TABLE) and validated in
-- 20261129180300, which scans without blocking writes.

create function private.whatsapp_message_values_valid(
  direction text, type text, status text, routing_status text, media_status text, outbound_kind text,
  tenant_phone text, attempt_count integer, landlord_id uuid, conversation_id uuid)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return (direction in ('incoming', 'outgoing')) is not false
    and (type in ('text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts', 'interactive',
                  'button', 'reaction', 'order', 'system', 'unsupported', 'template')) is not false
    and (status in ('received', 'queued', 'sending', 'needs_review', 'sent', 'delivered', 'read', 'failed')) is not false
    and (routing_status in ('delivered', 'ambiguous', 'unknown_sender', 'landlord_disabled', 'blocked', 'outbound',
                            'system', 'dismissed')) is not false
    and (media_status in ('pending', 'stored', 'failed')) is not false
    and (outbound_kind in ('text', 'template', 'interactive', 'media')) is not false
    and (tenant_phone ~ '^[1-9][0-9]{7,14}$') is not false
    and (attempt_count >= 0) is not false
    -- an outgoing message that is routed (not multi-WABA history) says what kind it is
    and (direction = 'incoming' or routing_status is null or outbound_kind is not null) is not false
    -- a delivered message has its landlord and conversation
    and (routing_status is distinct from 'delivered' or (landlord_id is not null and conversation_id is not null)) is not false;
end
$$;
comment on function private.whatsapp_message_values_valid(text, text, text, text, text, text, text, integer, uuid, uuid) is
  'The CHECK rules of public.whatsapp_messages (constraint whatsapp_messages_values_check), one line per rule.';

create function private.whatsapp_conversation_values_valid(
  tenant_phone text, status text, unread_count integer, last_message_preview text,
  last_inbound_at timestamptz, last_message_at timestamptz)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  return (tenant_phone ~ '^[1-9][0-9]{7,14}$') is not false
    and (status in ('active', 'archived', 'blocked')) is not false
    and (unread_count >= 0) is not false
    and (length(last_message_preview) <= 160) is not false
    and (last_inbound_at is null or last_inbound_at <= last_message_at) is not false;
end
$$;
comment on function private.whatsapp_conversation_values_valid(text, text, integer, text, timestamptz, timestamptz) is
  'The CHECK rules of public.whatsapp_conversations (constraint whatsapp_conversations_values_check), one line per rule.';

-- A CHECK runs as whoever writes the row: landlords (authenticated) update their conversations and
-- messages under RLS, the service (service_role) writes through the RPCs.
grant execute on function private.whatsapp_message_values_valid(text, text, text, text, text, text, text, integer, uuid, uuid),
  private.whatsapp_conversation_values_valid(text, text, integer, text, timestamptz, timestamptz) to authenticated, service_role;

alter table public.whatsapp_messages
  add constraint whatsapp_messages_values_check check (private.whatsapp_message_values_valid(
    direction, type, status, routing_status, media_status, outbound_kind, tenant_phone, attempt_count,
    landlord_id, conversation_id)) not valid,
  drop constraint whatsapp_messages_direction_check,
  drop constraint whatsapp_messages_type_check,
  drop constraint whatsapp_messages_status_check,
  drop constraint whatsapp_messages_routing_status_check,
  drop constraint whatsapp_messages_media_status_check,
  drop constraint whatsapp_messages_outbound_kind_check,
  drop constraint whatsapp_messages_tenant_phone_check,
  drop constraint whatsapp_messages_attempt_count_check,
  drop constraint whatsapp_messages_outbound_shape,
  drop constraint whatsapp_messages_delivered_has_landlord;

alter table public.whatsapp_conversations
  add constraint whatsapp_conversations_values_check check (private.whatsapp_conversation_values_valid(
    tenant_phone, status, unread_count, last_message_preview, last_inbound_at, last_message_at)) not valid,
  drop constraint whatsapp_conversations_tenant_phone_check,
  drop constraint whatsapp_conversations_status_check,
  drop constraint whatsapp_conversations_unread_count_check,
  drop constraint whatsapp_conversations_last_message_preview_check,
  drop constraint whatsapp_conversations_inbound_not_after_last;
