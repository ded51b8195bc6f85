-- Why: before the backfill touches any multi-WABA row, an immutable copy of it, exactly as it
-- was, goes to `archive` — a schema the Data API does not expose and no API role can read.
-- Live history stays in whatsapp_messages (it shows in the new conversations); the archive is
-- the proof that nothing was lost. Rows are copied here now, and the backfill copies any row
-- that arrives later (old WABAs still deliver until phase 3) before it changes it.

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

-- Shared by every append-only table; the trigger's argument says why the rows never change.
create or replace function private.trg_append_only()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  raise exception using errcode = '42501', message = format('%s.%s is append-only', tg_table_schema, tg_table_name),
    hint = coalesce(tg_argv[0], 'its rows are never changed or removed');
end
$$;
comment on function private.trg_append_only() is 'Trigger: refuses UPDATE, DELETE and TRUNCATE (42501); argument: the hint.';

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

-- Everything multi-WABA that exists now (rows with a landlord user_id and no webhook element).
insert into archive.multi_waba_messages (id, user_id, waba_id, wamid, from_phone, to_phone, direction, type, body, status,
                                         sent_at, created_at, updated_at)
select m.id, m.user_id, m.waba_id, m.wamid, m.from_phone, m.to_phone, m.direction, m.type, m.body, m.status,
       m.sent_at, m.created_at, m.updated_at
from public.whatsapp_messages m
where m.user_id is not null and m.raw is null;
