-- Why: phase 3. Landlords no longer connect their own WhatsApp Business Accounts: every
-- connected account becomes 'migrated_to_centralized', landlords can no longer write to the
-- table, and stored access-token references are erased (an unused credential is a liability).
-- The accounts and every multi-WABA message were archived first (archive schema); then the
-- WABA-specific waba_id leaves whatsapp_messages, as the centralized design wants.

-- 1. Archive whatever is not archived yet, exactly as it is.
insert into archive.multi_waba_accounts (id, user_id, waba_id, phone_number_id, display_phone_number, status,
                                         access_token_ref, connected_at, created_at, updated_at)
select a.id, a.user_id, a.waba_id, a.phone_number_id, a.display_phone_number, a.status, a.access_token_ref,
       a.connected_at, a.created_at, a.updated_at
from public.whatsapp_accounts a
on conflict (id) do nothing;

select private.archive_multi_waba_messages();

-- 2. Retire the accounts.
alter table public.whatsapp_accounts drop constraint whatsapp_accounts_status_check;
update public.whatsapp_accounts set
  status = case when status = 'connected' then 'migrated_to_centralized' else 'disconnected' end,
  access_token_ref = null;
alter table public.whatsapp_accounts
  add constraint whatsapp_accounts_status_check check (status in ('disconnected', 'migrated_to_centralized')),
  add constraint whatsapp_accounts_no_credentials check (access_token_ref is null);
comment on table public.whatsapp_accounts is
  'Retired multi-WABA accounts (read-only for landlords). Originals in archive.multi_waba_accounts.';

drop policy "landlords can connect accounts" on public.whatsapp_accounts;
drop policy "landlords can update their accounts" on public.whatsapp_accounts;
drop policy "landlords can delete their accounts" on public.whatsapp_accounts;
revoke insert, update, delete on public.whatsapp_accounts from authenticated;

-- 3. The WABA-specific column leaves the live messages (kept in the archive).
alter table public.whatsapp_messages drop column waba_id;
