-- Why: phase 2 schema. Messages of the central number carry the landlord, tenant, property and
-- conversation they were routed to, the routing decision, and everything a real inbox needs:
-- type, text, media (id, mime, sha256, caption, filename), reply context, delivery status with
-- timestamps, errors, and the raw element Meta sent (so nothing is ever lost). Outbound messages
-- are queued here too (status 'queued'). waba_id stays until the phase-3 cleanup.

alter table public.whatsapp_messages
  alter column user_id drop not null,
  add column landlord_id uuid references public.user_profiles (id) on delete cascade,
  add column tenant_id uuid references public.tenants (id) on delete set null,
  add column property_id uuid references public.properties (id) on delete set null,
  add column conversation_id uuid references public.whatsapp_conversations (id) on delete set null,
  add column tenant_phone text check (tenant_phone ~ '^[1-9][0-9]{7,14}$'),
  add column is_from_tenant boolean,
  add column landlord_signature text,
  add column routing_status text check (routing_status in
    ('delivered', 'ambiguous', 'unknown_sender', 'landlord_disabled', 'blocked', 'outbound', 'system')),
  add column routing_metadata jsonb not null default '{}',
  add column media_id text,
  add column media_mime_type text,
  add column media_sha256 text,
  add column media_caption text,
  add column media_filename text,
  add column reply_to_wamid text,
  add column reply_to_message_id uuid references public.whatsapp_messages (id) on delete set null,
  add column contact_name text,
  add column raw jsonb,
  add column outbound_kind text check (outbound_kind in ('text', 'template')),
  add column template jsonb,
  add column attempt_count integer not null default 0 check (attempt_count >= 0),
  add column next_attempt_at timestamptz,
  add column claimed_at timestamptz,
  add column delivered_at timestamptz,
  add column read_at timestamptz,
  add column failed_at timestamptz,
  add column status_updated_at timestamptz,
  add column error_code integer,
  add column error_title text,
  add column error_details jsonb;

alter table public.whatsapp_messages
  add constraint whatsapp_messages_type_check check (type in
    ('text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts', 'interactive',
     'button', 'reaction', 'order', 'system', 'unsupported', 'template')),
  add constraint whatsapp_messages_status_check check (status in
    ('received', 'queued', 'sending', 'needs_review', 'sent', 'delivered', 'read', 'failed')),
  add constraint whatsapp_messages_outbound_shape check (
    direction = 'incoming' or routing_status is null or outbound_kind is not null),
  add constraint whatsapp_messages_delivered_has_landlord check (
    routing_status is distinct from 'delivered' or (landlord_id is not null and conversation_id is not null));

comment on column public.whatsapp_messages.wamid is 'WhatsApp message id: the idempotency key of webhook delivery.';
comment on column public.whatsapp_messages.landlord_id is 'Landlord the message belongs to; null while held (ambiguous, unknown_sender, ...).';
comment on column public.whatsapp_messages.routing_status is 'Routing decision for inbound messages; outbound/system for messages we send.';
comment on column public.whatsapp_messages.routing_metadata is 'Why: candidates considered and the rule applied.';
comment on column public.whatsapp_messages.landlord_signature is 'Prefix sent before body ("From <name> via ZenRent:"); body holds the landlord''s own text.';
comment on column public.whatsapp_messages.raw is 'The message element exactly as Meta sent it.';

-- Inbox: a conversation's messages by time (keyset on sent_at, id).
create index whatsapp_messages_conversation_idx on public.whatsapp_messages (conversation_id, sent_at desc, id desc);
create index whatsapp_messages_landlord_id_idx on public.whatsapp_messages (landlord_id);
create index whatsapp_messages_tenant_id_idx on public.whatsapp_messages (tenant_id);
create index whatsapp_messages_property_id_idx on public.whatsapp_messages (property_id);
create index whatsapp_messages_reply_to_message_id_idx on public.whatsapp_messages (reply_to_message_id);
-- Recent outbound messages to a phone (routing's "recent outbound" rule).
create index whatsapp_messages_outbound_phone_idx on public.whatsapp_messages (tenant_phone, sent_at desc)
  where direction = 'outgoing';
-- The outbound queue.
create index whatsapp_messages_queue_idx on public.whatsapp_messages (next_attempt_at nulls first, created_at)
  where status = 'queued';
create index whatsapp_messages_sending_idx on public.whatsapp_messages (claimed_at) where status = 'sending';
-- Held messages (support queue).
create index whatsapp_messages_held_idx on public.whatsapp_messages (routing_status, created_at desc)
  where landlord_id is null and direction = 'incoming';

-- Conversation counters follow the messages, in the same transaction.
create or replace function private.trg_bump_conversation()
returns trigger
language plpgsql
security definer -- updates counters of a conversation the writer may not be allowed to update directly
set search_path = ''
as $$
declare
  counts_unread boolean := new.is_from_tenant and new.type <> 'reaction';
  preview text;
begin
  preview := left(coalesce(
    nullif(btrim(new.body), ''),
    nullif(btrim(new.media_caption), ''),
    '[' || new.type || ']'), 160);
  update public.whatsapp_conversations c set
    unread_count = c.unread_count + case when counts_unread then 1 else 0 end,
    last_message_at = greatest(c.last_message_at, new.sent_at),
    last_inbound_at = case when new.is_from_tenant then greatest(c.last_inbound_at, new.sent_at) else c.last_inbound_at end,
    last_message_preview = case
      when new.type = 'reaction' then c.last_message_preview
      when c.last_message_at is null or new.sent_at >= c.last_message_at then preview
      else c.last_message_preview end,
    status = case when new.is_from_tenant and c.status = 'archived' then 'active' else c.status end
  where c.id = new.conversation_id;
  return null;
end
$$;

create trigger whatsapp_messages_bump_conversation after insert on public.whatsapp_messages
  for each row when (new.conversation_id is not null)
  execute function private.trg_bump_conversation();

-- A message keeps the landlord, tenant and routing decision it was filed under.
create or replace function private.trg_guard_message_routing()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  if current_user in ('authenticated', 'anon')
     and (new.landlord_id is distinct from old.landlord_id
       or new.tenant_id is distinct from old.tenant_id
       or new.conversation_id is distinct from old.conversation_id
       or new.routing_status is distinct from old.routing_status) then
    raise exception using errcode = '42501',
      message = 'landlord_id, tenant_id, conversation_id and routing_status cannot be changed',
      hint = 'routing is decided by the server';
  end if;
  return new;
end
$$;

create trigger whatsapp_messages_guard_routing before update on public.whatsapp_messages
  for each row execute function private.trg_guard_message_routing();
