-- Why: before the backfill touches any multi-WABA row, an immutable copy of it, exactly as it
-- was, goes to `archive` — a schema the Data API does not expose and no API role can read.
-- Live history stays in whatsapp_messages (it shows in the new conversations); the archive is
-- the proof that nothing was lost. The next migration copies the rows that exist now; the
-- backfill copies any row that arrives later (old WABAs still deliver until phase 3) before it
-- changes it, and phase 3 copies the accounts.

create schema if not exists archive;
revoke all on schema archive from public;

create table archive.multi_waba_messages (
  id uuid primary key,
  user_id uuid not null,
  waba_id text,
  wamid text,
  from_phone text,
  to_phone text,
  direction text not null,
  type text not null,
  body text,
  status text,
  sent_at timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  archived_at timestamptz not null default now()
);
comment on table archive.multi_waba_messages is 'Multi-WABA messages exactly as they were before the move to the central number. Append-only.';
create index multi_waba_messages_user_id_idx on archive.multi_waba_messages (user_id);

create table archive.multi_waba_accounts (
  id uuid primary key,
  user_id uuid not null,
  waba_id text not null,
  phone_number_id text not null,
  display_phone_number text,
  status text not null,
  access_token_ref text,
  connected_at timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  archived_at timestamptz not null default now()
);
comment on table archive.multi_waba_accounts is
  'Per-landlord WhatsApp Business Accounts as they were before phase 3. Append-only. access_token_ref is kept '
  'only as a reference name for audit; phase 3 erases it from the live table.';


create trigger multi_waba_messages_append_only before update or delete on archive.multi_waba_messages
  for each row execute function private.trg_append_only('archived rows are the record of what was migrated; they are never changed');
create trigger multi_waba_messages_no_truncate before truncate on archive.multi_waba_messages
  for each statement execute function private.trg_append_only('archived rows are the record of what was migrated; they are never changed');
create trigger multi_waba_accounts_append_only before update or delete on archive.multi_waba_accounts
  for each row execute function private.trg_append_only('archived rows are the record of what was migrated; they are never changed');
create trigger multi_waba_accounts_no_truncate before truncate on archive.multi_waba_accounts
  for each statement execute function private.trg_append_only('archived rows are the record of what was migrated; they are never changed');

alter table archive.multi_waba_messages enable row level security;
alter table archive.multi_waba_accounts enable row level security;
revoke all on archive.multi_waba_messages, archive.multi_waba_accounts from public, anon, authenticated, service_role;

-- Copy multi-WABA rows to the archive, exactly as they are, unless already there. waba_id is
-- read through to_jsonb so that the same function serves before and after phase 3 drops it.
create function private.archive_multi_waba_messages(ids uuid[] default null)
returns integer
language sql
security invoker
set search_path = ''
as $$
  with archived as (
    insert into archive.multi_waba_messages (id, user_id, waba_id, wamid, from_phone, to_phone, direction, type, body,
                                             status, sent_at, created_at, updated_at)
    select m.id, m.user_id, to_jsonb(m) ->> 'waba_id', m.wamid, m.from_phone, m.to_phone, m.direction, m.type, m.body,
           m.status, m.sent_at, m.created_at, m.updated_at
    from public.whatsapp_messages m
    where m.user_id is not null and (ids is null or m.id = any (ids))
    on conflict (id) do nothing
    returning 1
  )
  select count(*)::integer from archived
$$;
comment on function private.archive_multi_waba_messages(uuid[]) is
  'Copy multi-WABA messages (all, or these ids) to archive.multi_waba_messages unless already there; returns the count copied.';
