-- Why: the schema as it exists in production today, before the centralized ZenRent number.
-- Each landlord connects their own WhatsApp Business Account (whatsapp_accounts) and their
-- history sits in whatsapp_messages keyed by user_id and waba_id. Owner-only RLS everywhere.
-- Later migrations move this to the centralized model; nothing is dropped here.

-- user_profiles -----------------------------------------------------------------------------
create table public.user_profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  full_name text not null check (length(btrim(full_name)) between 1 and 200),
  email text,
  phone text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.user_profiles is 'One row per landlord (auth user): display name and contact details.';

create trigger user_profiles_set_updated_at before update on public.user_profiles
  for each row execute function private.trg_set_updated_at();

alter table public.user_profiles enable row level security;
revoke all on public.user_profiles from anon, authenticated;
grant select, insert, update on public.user_profiles to authenticated;
grant all on public.user_profiles to service_role;

create policy "landlords can read their profile" on public.user_profiles
  for select to authenticated using (id = (select auth.uid()));
create policy "landlords can create their profile" on public.user_profiles
  for insert to authenticated with check (id = (select auth.uid()));
create policy "landlords can update their profile" on public.user_profiles
  for update to authenticated using (id = (select auth.uid())) with check (id = (select auth.uid()));

-- properties --------------------------------------------------------------------------------
create table public.properties (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  address text not null check (length(btrim(address)) between 1 and 500),
  city text,
  postcode text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.properties is 'A rented property; user_id is the landlord who owns it.';
create index properties_user_id_idx on public.properties (user_id);

create trigger properties_set_updated_at before update on public.properties
  for each row execute function private.trg_set_updated_at();

alter table public.properties enable row level security;
revoke all on public.properties from anon, authenticated;
grant select, insert, update, delete on public.properties to authenticated;
grant all on public.properties to service_role;

create policy "landlords can read their properties" on public.properties
  for select to authenticated using (user_id = (select auth.uid()));
create policy "landlords can add properties" on public.properties
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "landlords can update their properties" on public.properties
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "landlords can delete their properties" on public.properties
  for delete to authenticated using (user_id = (select auth.uid()));

-- tenants -----------------------------------------------------------------------------------
create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 200),
  phone text,
  email text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.tenants is 'A landlord''s tenant. phone is free text as typed by the landlord.';
create index tenants_user_id_idx on public.tenants (user_id);

create trigger tenants_set_updated_at before update on public.tenants
  for each row execute function private.trg_set_updated_at();

alter table public.tenants enable row level security;
revoke all on public.tenants from anon, authenticated;
grant select, insert, update, delete on public.tenants to authenticated;
grant all on public.tenants to service_role;

create policy "landlords can read their tenants" on public.tenants
  for select to authenticated using (user_id = (select auth.uid()));
create policy "landlords can add tenants" on public.tenants
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "landlords can update their tenants" on public.tenants
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "landlords can delete their tenants" on public.tenants
  for delete to authenticated using (user_id = (select auth.uid()));

-- leases ------------------------------------------------------------------------------------
create table public.leases (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  property_id uuid not null references public.properties (id) on delete cascade,
  status text not null default 'pending' check (status in ('pending', 'active', 'ended')),
  start_date date not null,
  end_date date,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint leases_dates_ordered check (end_date is null or end_date >= start_date)
);
comment on table public.leases is 'A tenant renting a property. Only status = active leases route WhatsApp messages.';
create index leases_tenant_id_idx on public.leases (tenant_id);
create index leases_property_id_idx on public.leases (property_id);

create trigger leases_set_updated_at before update on public.leases
  for each row execute function private.trg_set_updated_at();

-- A lease belongs to the landlord who owns its property; the tenant must be theirs too.
create or replace function private.owns_property(property_id uuid)
returns boolean
language sql
stable
security definer -- reads properties regardless of the caller's RLS, only to answer "is it mine"
set search_path = ''
as $$
  select exists (
    select 1 from public.properties p
    where p.id = owns_property.property_id and p.user_id = (select auth.uid())
  )
$$;
comment on function private.owns_property(uuid) is 'RLS helper: the property belongs to the calling landlord.';

create or replace function private.owns_tenant(tenant_id uuid)
returns boolean
language sql
stable
security definer -- reads tenants regardless of the caller's RLS, only to answer "is it mine"
set search_path = ''
as $$
  select exists (
    select 1 from public.tenants t
    where t.id = owns_tenant.tenant_id and t.user_id = (select auth.uid())
  )
$$;
comment on function private.owns_tenant(uuid) is 'RLS helper: the tenant belongs to the calling landlord.';

revoke all on function private.owns_property(uuid), private.owns_tenant(uuid) from public, anon;
grant execute on function private.owns_property(uuid), private.owns_tenant(uuid) to authenticated;

alter table public.leases enable row level security;
revoke all on public.leases from anon, authenticated;
grant select, insert, update, delete on public.leases to authenticated;
grant all on public.leases to service_role;

create policy "landlords can read leases of their properties" on public.leases
  for select to authenticated using ((select private.owns_property(property_id)));
create policy "landlords can add leases of their tenants and properties" on public.leases
  for insert to authenticated
  with check ((select private.owns_property(property_id)) and (select private.owns_tenant(tenant_id)));
create policy "landlords can update leases of their properties" on public.leases
  for update to authenticated
  using ((select private.owns_property(property_id)))
  with check ((select private.owns_property(property_id)) and (select private.owns_tenant(tenant_id)));
create policy "landlords can delete leases of their properties" on public.leases
  for delete to authenticated using ((select private.owns_property(property_id)));

-- whatsapp_accounts (multi-WABA) ------------------------------------------------------------
create table public.whatsapp_accounts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  waba_id text not null,
  phone_number_id text not null,
  display_phone_number text,
  status text not null default 'connected' check (status in ('pending', 'connected', 'disconnected')),
  access_token_ref text,
  connected_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (waba_id, phone_number_id)
);
comment on table public.whatsapp_accounts is 'Multi-WABA model: each landlord''s own WhatsApp Business Account.';
create index whatsapp_accounts_user_id_idx on public.whatsapp_accounts (user_id);

create trigger whatsapp_accounts_set_updated_at before update on public.whatsapp_accounts
  for each row execute function private.trg_set_updated_at();

alter table public.whatsapp_accounts enable row level security;
revoke all on public.whatsapp_accounts from anon, authenticated;
grant select, insert, update, delete on public.whatsapp_accounts to authenticated;
grant all on public.whatsapp_accounts to service_role;

create policy "landlords can read their accounts" on public.whatsapp_accounts
  for select to authenticated using (user_id = (select auth.uid()));
create policy "landlords can connect accounts" on public.whatsapp_accounts
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "landlords can update their accounts" on public.whatsapp_accounts
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "landlords can delete their accounts" on public.whatsapp_accounts
  for delete to authenticated using (user_id = (select auth.uid()));

-- whatsapp_messages (multi-WABA history) ----------------------------------------------------
create table public.whatsapp_messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.user_profiles (id) on delete cascade,
  waba_id text,
  wamid text unique,
  from_phone text,
  to_phone text,
  direction text not null check (direction in ('incoming', 'outgoing')),
  type text not null default 'text',
  body text,
  status text,
  sent_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.whatsapp_messages is 'WhatsApp messages. Multi-WABA rows carry user_id and waba_id.';
create index whatsapp_messages_user_id_sent_at_idx on public.whatsapp_messages (user_id, sent_at desc);

create trigger whatsapp_messages_set_updated_at before update on public.whatsapp_messages
  for each row execute function private.trg_set_updated_at();

alter table public.whatsapp_messages enable row level security;
revoke all on public.whatsapp_messages from anon, authenticated;
grant select, insert, update, delete on public.whatsapp_messages to authenticated;
grant all on public.whatsapp_messages to service_role;

create policy "landlords can read their messages" on public.whatsapp_messages
  for select to authenticated using (user_id = (select auth.uid()));
create policy "landlords can add messages" on public.whatsapp_messages
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "landlords can update their messages" on public.whatsapp_messages
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "landlords can delete their messages" on public.whatsapp_messages
  for delete to authenticated using (user_id = (select auth.uid()));
