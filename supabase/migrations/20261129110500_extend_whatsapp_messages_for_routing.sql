-- Why: phase 2 schema. Messages of the central number carry the landlord, tenant, property and
-- conversation they were routed to and everything a real inbox needs: type, text, media (id,
-- mime, sha256, caption, filename), reply context, delivery status with timestamps and errors.
-- Outbound messages are queued here too (status 'queued'). What landlords must not see — the
-- routing decision naming other candidate landlords and the raw element Meta sent — lives in
-- private.whatsapp_message_details (next migration), so landlords may `select *` here.
-- user_id stays the multi-WABA owner: it is null on every message of the central number.

-- The stored is_held column rewrites the table once, under the same ACCESS EXCLUSIVE lock the
-- new checks and indexes take anyway (measured per million messages in the runbook); a column
-- kept by a trigger instead would cost every routed message a function call forever.
alter table public.whatsapp_messages
  alter column user_id drop not null,
  add column landlord_id uuid references public.user_profiles (id) on delete cascade,
  add column tenant_id uuid references public.tenants (id) on delete set null,
  add column property_id uuid references public.properties (id) on delete set null,
  add column conversation_id uuid references public.whatsapp_conversations (id) on delete set null,
  add column tenant_phone text check (tenant_phone ~ '^[1-9][0-9]{7,14}$'),
  add column is_from_tenant boolean,
  add column landlord_signature text,
  add column routing_status text constraint whatsapp_messages_routing_status_check check (routing_status in
    ('delivered', 'ambiguous', 'unknown_sender', 'landlord_disabled', 'blocked', 'outbound', 'system', 'dismissed')),
  add column media_id text,
  add column media_mime_type text,
  add column media_sha256 text,
  add column media_caption text,
  add column media_filename text,
  add column reply_to_wamid text,
  add column reply_to_message_id uuid references public.whatsapp_messages (id) on delete set null,
  add column contact_name text,
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
  add column error_details jsonb,
  -- The one definition of "held": stored by the router, visible to no landlord, waiting for support.
  -- squawk-ignore adding-field-with-default
  add column is_held boolean not null generated always as (
    direction = 'incoming' and landlord_id is null
    and coalesce(routing_status in ('ambiguous', 'unknown_sender', 'landlord_disabled'), false)) stored;

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

comment on column public.whatsapp_messages.user_id is 'Multi-WABA owner of a history message; null for every message of the central number.';
comment on column public.whatsapp_messages.wamid is 'WhatsApp message id: the idempotency key of webhook delivery.';
comment on column public.whatsapp_messages.landlord_id is 'Landlord the message belongs to; null while held (ambiguous, unknown_sender, ...).';
comment on column public.whatsapp_messages.routing_status is 'Routing decision for inbound messages; outbound/system for messages we send.';
comment on column public.whatsapp_messages.landlord_signature is 'Prefix sent before body ("From <name> via ZenRent:"); body holds the landlord''s own text.';
comment on column public.whatsapp_messages.is_held is 'Inbound, routed to no landlord, waiting for support (ambiguous, unknown_sender, landlord_disabled).';

-- Inbox: a conversation's messages by time (keyset on sent_at, id).
create index whatsapp_messages_conversation_idx on public.whatsapp_messages (conversation_id, sent_at desc, id desc);
create index whatsapp_messages_landlord_id_idx on public.whatsapp_messages (landlord_id);
-- Foreign keys that are null on many rows: partial indexes still serve them ("= x" implies "is not null").
create index whatsapp_messages_tenant_id_idx on public.whatsapp_messages (tenant_id) where tenant_id is not null;
create index whatsapp_messages_property_id_idx on public.whatsapp_messages (property_id) where property_id is not null;
create index whatsapp_messages_reply_to_message_id_idx on public.whatsapp_messages (reply_to_message_id)
  where reply_to_message_id is not null;
-- Recent outbound messages to a phone (routing's "recent outbound" rule).
create index whatsapp_messages_outbound_phone_idx on public.whatsapp_messages (tenant_phone, sent_at desc)
  where direction = 'outgoing';
-- Time-window counts (status page, metrics) only: BRIN, not B-tree, on the hot insert path.
create index whatsapp_messages_created_at_brin on public.whatsapp_messages using brin (created_at);
-- The baseline's (user_id, sent_at) index serves only multi-WABA history: central-number rows
-- (user_id null) need not be in it.
drop index public.whatsapp_messages_user_id_sent_at_idx;
create index whatsapp_messages_user_id_sent_at_idx on public.whatsapp_messages (user_id, sent_at desc)
  where user_id is not null;

-- Conversation counters follow the messages, in the same transaction.
create function private.trg_bump_conversation()
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
comment on function private.trg_bump_conversation() is
  'Trigger: a message filed into a conversation bumps its unread count, last times, preview, and reopens it if archived.';

create trigger whatsapp_messages_bump_conversation after insert on public.whatsapp_messages
  for each row when (new.conversation_id is not null)
  execute function private.trg_bump_conversation();
-- A message delivered after the fact (support assignment) counts like a routed one. Backfilled
-- multi-WABA history (user_id set) never bumps: the backfill sets counters from history itself.
create trigger whatsapp_messages_bump_conversation_on_assign after update of conversation_id on public.whatsapp_messages
  for each row when (old.conversation_id is null and new.conversation_id is not null and new.user_id is null)
  execute function private.trg_bump_conversation();

-- A message keeps the landlord, tenant and routing decision it was filed under.
create function private.trg_guard_message_routing()
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
    raise exception using errcode = '42501', detail = 'not_allowed',
      message = 'landlord_id, tenant_id, conversation_id and routing_status cannot be changed',
      hint = 'routing is decided by the server';
  end if;
  return new;
end
$$;
comment on function private.trg_guard_message_routing() is
  'Trigger: API roles never change a message''s landlord, tenant, conversation or routing status (42501).';

create trigger whatsapp_messages_guard_routing before update on public.whatsapp_messages
  for each row execute function private.trg_guard_message_routing();
