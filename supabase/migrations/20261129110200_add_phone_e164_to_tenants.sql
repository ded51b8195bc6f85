-- Why: routing finds the landlord by the tenant's phone, and landlords type phones in every
-- format. tenants.phone_e164 holds the one normalized key (private.normalize_phone, read in the
-- configured default country), set by trigger on every insert and phone change, and indexed.
-- Existing rows are filled by the next migration.

alter table public.tenants add column phone_e164 text
  check (phone_e164 ~ '^[1-9][0-9]{7,14}$');
comment on column public.tenants.phone_e164 is 'tenants.phone normalized to E.164 digits without + (trigger-maintained).';

create function private.trg_normalize_tenant_phone()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  new.phone_e164 := private.normalize_phone(new.phone, private.default_country());
  return new;
end
$$;
comment on function private.trg_normalize_tenant_phone() is 'Trigger: tenants.phone_e164 := normalize_phone(phone).';

create trigger tenants_normalize_phone before insert or update of phone on public.tenants
  for each row execute function private.trg_normalize_tenant_phone();

create index tenants_phone_e164_idx on public.tenants (phone_e164) where phone_e164 is not null;
