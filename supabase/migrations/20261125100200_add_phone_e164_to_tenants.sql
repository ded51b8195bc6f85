-- Why: routing finds the landlord by the tenant's phone. Landlords type phones in every format;
-- tenants.phone_e164 holds the one normalized key (private.normalize_phone), kept by trigger
-- and indexed. A lease may only join a tenant and a property of the same landlord.

create table private.whatsapp_settings (
  id boolean primary key default true check (id),
  phone_number_id text,
  display_phone_number text,
  default_country text not null default 'GB' check (default_country ~ '^[A-Z]{2}$'),
  courtesy_reply_text text not null default
    'Hello! This is ZenRent. We could not match this number to a tenancy, so your message has not been passed on. Please ask your landlord to add this number to your tenant profile.',
  clarification_reply_text text not null default
    'Hello! This is ZenRent. This number is linked to more than one landlord, so we could not tell who your message is for. Please reply to (swipe right on) a message from the landlord you want to reach.',
  opt_out_ack_text text not null default
    'You will no longer receive WhatsApp messages from landlords through ZenRent. Reply START to receive them again.',
  opt_in_ack_text text not null default
    'Welcome back: you will receive WhatsApp messages from your landlords through ZenRent again. Reply STOP to opt out.',
  outbound_max_attempts int not null default 5 check (outbound_max_attempts between 1 and 50),
  notify_listeners boolean not null default true,
  updated_at timestamptz not null default now()
);
comment on table private.whatsapp_settings is 'The one-row configuration of the central number; change it with public.configure_whatsapp().';
insert into private.whatsapp_settings default values;
alter table private.whatsapp_settings enable row level security;
revoke all on private.whatsapp_settings from public, anon, authenticated, service_role;

create or replace function private.default_country()
returns text
language sql
stable
security definer -- reads private settings on behalf of triggers fired by landlords
set search_path = ''
as $$
  select coalesce((select s.default_country from private.whatsapp_settings s), 'GB')
$$;
comment on function private.default_country() is 'The country national phone numbers are read in (setting, default GB).';
grant execute on function private.default_country() to authenticated, service_role;

alter table public.tenants add column phone_e164 text
  check (phone_e164 ~ '^[1-9][0-9]{7,14}$');
comment on column public.tenants.phone_e164 is 'tenants.phone normalized to E.164 digits without + (trigger-maintained).';

create or replace function private.trg_normalize_tenant_phone()
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
grant execute on function private.normalize_phone(text, text) to authenticated;

create trigger tenants_normalize_phone before insert or update of phone on public.tenants
  for each row execute function private.trg_normalize_tenant_phone();

-- Fill phone_e164 for existing rows without touching their updated_at.
alter table public.tenants disable trigger tenants_set_updated_at;
update public.tenants set phone_e164 = private.normalize_phone(phone, private.default_country()) where phone is not null;
alter table public.tenants enable trigger tenants_set_updated_at;
create index tenants_phone_e164_idx on public.tenants (phone_e164) where phone_e164 is not null;

-- A lease joins a tenant and a property of one landlord.
create or replace function private.trg_lease_same_landlord()
returns trigger
language plpgsql
security definer -- compares owners of rows the caller may not see
set search_path = ''
as $$
begin
  if (select t.user_id from public.tenants t where t.id = new.tenant_id)
     is distinct from (select p.user_id from public.properties p where p.id = new.property_id) then
    raise exception using errcode = '42501',
      message = 'a lease must join a tenant and a property of the same landlord',
      hint = 'create the tenant under the landlord who owns the property';
  end if;
  return new;
end
$$;

create trigger leases_same_landlord before insert or update of tenant_id, property_id on public.leases
  for each row execute function private.trg_lease_same_landlord();
