-- Why: with one central number, a landlord's inbox is a list of conversations, one per
-- (landlord, tenant phone). Several properties of the same landlord share one conversation.
-- Counters (unread_count, last_message_at, last_inbound_at, preview) are kept by a trigger on
-- whatsapp_messages (next migration). Landlords read their own; every write goes through RPCs.

create table public.whatsapp_conversations (
  id uuid primary key default gen_random_uuid(),
  landlord_id uuid not null references public.user_profiles (id) on delete cascade,
  tenant_id uuid references public.tenants (id) on delete set null,
  tenant_phone text not null check (tenant_phone ~ '^[1-9][0-9]{7,14}$'),
  property_id uuid references public.properties (id) on delete set null,
  status text not null default 'active' check (status in ('active', 'archived', 'blocked')),
  unread_count integer not null default 0 check (unread_count >= 0),
  last_message_at timestamptz,
  last_inbound_at timestamptz,
  last_message_preview text check (length(last_message_preview) <= 160),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint whatsapp_conversations_landlord_phone_key unique (landlord_id, tenant_phone),
  constraint whatsapp_conversations_inbound_not_after_last check (last_inbound_at is null or last_inbound_at <= last_message_at)
);
comment on table public.whatsapp_conversations is 'A landlord''s WhatsApp conversation with one tenant phone through the central ZenRent number.';
comment on column public.whatsapp_conversations.last_inbound_at is 'Last message from the tenant (multi-WABA history included).';
comment on column public.whatsapp_conversations.last_message_preview is 'Short preview of the latest message for the inbox list (no signature prefix).';

-- Inbox: a landlord's conversations by recency (keyset on last_message_at, id). Lookups by phone
-- go through the unique (landlord_id, tenant_phone) key.
create index whatsapp_conversations_inbox_idx
  on public.whatsapp_conversations (landlord_id, last_message_at desc nulls last, id desc);
create index whatsapp_conversations_unread_idx
  on public.whatsapp_conversations (landlord_id) where unread_count > 0;
create index whatsapp_conversations_tenant_id_idx on public.whatsapp_conversations (tenant_id);
create index whatsapp_conversations_property_id_idx on public.whatsapp_conversations (property_id);

create trigger whatsapp_conversations_set_updated_at before update on public.whatsapp_conversations
  for each row execute function private.trg_set_updated_at();

alter table public.whatsapp_conversations enable row level security;
revoke all on public.whatsapp_conversations from anon, authenticated;
grant select on public.whatsapp_conversations to authenticated;
grant all on public.whatsapp_conversations to service_role;

create policy "landlords can read their conversations" on public.whatsapp_conversations
  for select to authenticated using (landlord_id = (select auth.uid()));
