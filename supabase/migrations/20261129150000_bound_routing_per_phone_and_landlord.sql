-- Why: routing work must stay bounded however many tenants and leases landlords type in for one
-- phone. A hostile landlord inserted 1.2M tenants with a victim's phone (each with an active
-- lease): the routing table held a row per lease, the router read them all, and the victim's
-- webhook timed out (57014) every time; an agency's opt-in toggle rewrote a row per lease (22x).
--   * A landlord may hold at most max_tenants_per_phone tenants (setting, default 5) with the
--     same phone: more is refused with 23514 too_many_tenants_with_phone.
--   * The routing table holds one row per (phone, landlord): that landlord's newest active lease
--     for the phone. Names, opt-in and addresses are read when routing (primary-key lookups), so
--     renaming or opting in rewrites nothing. A change re-derives only the (phone, landlord)
--     pairs it touches.

alter table private.whatsapp_settings
  add column max_tenants_per_phone integer not null default 5 check (max_tenants_per_phone between 1 and 100);
comment on column private.whatsapp_settings.max_tenants_per_phone is
  'How many tenants one landlord may hold with the same phone (bounds routing work per phone).';

-- Tenants by landlord and phone: the cap's count, the routing sync and the backfill's lookups.
create index tenants_user_phone_idx on public.tenants (user_id, phone_e164) where phone_e164 is not null;
drop index public.tenants_phone_e164_idx;

create function private.trg_limit_tenants_per_phone()
returns trigger
language plpgsql
security definer -- counts the landlord's own tenants whatever the caller may see; reads private settings
set search_path = ''
as $$
declare
  cap integer := (select s.max_tenants_per_phone from private.whatsapp_settings s);
  held integer;
begin
  if new.phone_e164 is null
     or (tg_op = 'UPDATE' and new.phone_e164 is not distinct from old.phone_e164 and new.user_id = old.user_id) then
    return new;
  end if;
  -- Concurrent inserts for one landlord and phone count one after the other.
  perform pg_advisory_xact_lock(hashtextextended('tenants.user_phone:' || new.user_id || ':' || new.phone_e164, 0));
  select count(*) into held from public.tenants t
  where t.user_id = new.user_id and t.phone_e164 = new.phone_e164 and t.id <> new.id;
  if held >= cap then
    raise exception using errcode = '23514', detail = 'too_many_tenants_with_phone',
      message = format('you already hold %s tenants with the phone +%s', held, new.phone_e164),
      hint = format('a landlord may hold at most %s tenants with one phone; reuse one of them', cap);
  end if;
  return new;
end
$$;
comment on function private.trg_limit_tenants_per_phone() is
  'Trigger: at most max_tenants_per_phone tenants of one landlord with the same phone (23514 too_many_tenants_with_phone).';

-- After tenants_normalize_phone (triggers of one event fire in name order): phone_e164 is set.
create trigger tenants_phone_limit before insert or update on public.tenants
  for each row execute function private.trg_limit_tenants_per_phone();

-- The routing table, one row per (phone, landlord) ------------------------------------------------
-- Everything dropped here is private (no client can call or read it) and is replaced below.
-- squawk-ignore-file ban-drop-function, ban-drop-view, ban-drop-table
drop trigger user_profiles_routing on public.user_profiles;
drop function private.trg_routing_user_profiles();
drop function private.routing_sync_lease(uuid);
drop function private.routing_sync_tenant(uuid);
drop function private.routing_sync_property(uuid);
drop view private.tenant_landlord_routing_source;
drop table private.tenant_landlord_routing;

create table private.tenant_landlord_routing (
  tenant_phone text not null,
  landlord_id uuid not null,
  tenant_id uuid not null,
  property_id uuid not null,
  lease_id uuid not null,
  lease_start_date date not null,
  constraint tenant_landlord_routing_pkey primary key (tenant_phone, landlord_id)
);
comment on table private.tenant_landlord_routing is
  'Routing candidates: per (phone, landlord) the newest active lease. Exactly private.tenant_landlord_routing_source, kept by triggers.';
create index tenant_landlord_routing_landlord_idx on private.tenant_landlord_routing (landlord_id);
alter table private.tenant_landlord_routing enable row level security;
revoke all on private.tenant_landlord_routing from public, anon, authenticated, service_role;

-- The defining query. The table must always equal it (tested after random changes).
create view private.tenant_landlord_routing_source with (security_invoker = true) as
  select distinct on (t.phone_e164, t.user_id)
         t.phone_e164 as tenant_phone, t.user_id as landlord_id, t.id as tenant_id, p.id as property_id,
         l.id as lease_id, l.start_date as lease_start_date
  from public.leases l
  join public.tenants t on t.id = l.tenant_id
  join public.properties p on p.id = l.property_id and p.user_id = t.user_id
  where l.status = 'active' and t.phone_e164 is not null
  order by t.phone_e164, t.user_id, l.start_date desc, l.id;
revoke all on private.tenant_landlord_routing_source from public, anon, authenticated, service_role;

-- Re-derive one (phone, landlord) row from the defining query. plpgsql, not sql: it keeps its
-- plans for the session (docs/benchmarks.md, routing upkeep).
create function private.routing_sync_pair(phone text, landlord_id uuid)
returns void
language plpgsql
security definer -- writes the private routing table on behalf of whoever changed a lease, tenant or property
set search_path = ''
as $$
begin
  if phone is null or landlord_id is null then
    return;
  end if;
  delete from private.tenant_landlord_routing r
  where r.tenant_phone = routing_sync_pair.phone and r.landlord_id = routing_sync_pair.landlord_id;
  insert into private.tenant_landlord_routing
    select * from private.tenant_landlord_routing_source s
    where s.tenant_phone = routing_sync_pair.phone and s.landlord_id = routing_sync_pair.landlord_id;
end
$$;
comment on function private.routing_sync_pair(text, uuid) is 'Re-derive the routing row of one (phone, landlord) from the defining query.';

create or replace function private.trg_routing_leases()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
declare
  t public.tenants;
begin
  if tg_op in ('UPDATE', 'DELETE') then
    select * into t from public.tenants x where x.id = old.tenant_id;
    perform private.routing_sync_pair(t.phone_e164, t.user_id);
  end if;
  if tg_op in ('INSERT', 'UPDATE') and (tg_op = 'INSERT' or new.tenant_id is distinct from old.tenant_id) then
    select * into t from public.tenants x where x.id = new.tenant_id;
    perform private.routing_sync_pair(t.phone_e164, t.user_id);
  end if;
  return null;
end
$$;

create or replace function private.trg_routing_tenants()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
begin
  perform private.routing_sync_pair(old.phone_e164, old.user_id);
  if tg_op = 'UPDATE' and (new.phone_e164, new.user_id) is distinct from (old.phone_e164, old.user_id) then
    perform private.routing_sync_pair(new.phone_e164, new.user_id);
  end if;
  return null;
end
$$;

-- A property changing hands: every phone leasing it, for its old and its new landlord.
create or replace function private.trg_routing_properties()
returns trigger
language plpgsql
security definer -- writes the private routing table
set search_path = ''
as $$
declare
  phone text;
begin
  for phone in select distinct t.phone_e164 from public.leases l join public.tenants t on t.id = l.tenant_id
               where l.property_id in (old.id, new.id) and t.phone_e164 is not null loop
    perform private.routing_sync_pair(phone, old.user_id);
    perform private.routing_sync_pair(phone, new.user_id);
  end loop;
  return null;
end
$$;

-- Deletes cascade to leases, whose trigger keeps the table; what remains are moves and re-keys.
create or replace trigger leases_routing after insert or delete or update of tenant_id, property_id, status, start_date, id
  on public.leases for each row execute function private.trg_routing_leases();
-- `phone` too: phone_e164 is set by a BEFORE trigger, and column triggers see only the SET list.
create or replace trigger tenants_routing after delete or update of phone, phone_e164, user_id, id
  on public.tenants for each row execute function private.trg_routing_tenants();
drop trigger properties_routing on public.properties;
create trigger properties_routing_moves after update of user_id, id
  on public.properties for each row when (old.user_id is distinct from new.user_id or old.id is distinct from new.id)
  execute function private.trg_routing_properties();
-- A profile holds nothing the table keeps any more; its TRUNCATE still cascades to the rest.

-- The candidates the router and support see, with what is true now (names, opt-in, address).
create or replace function private.routing_candidates(phone text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'landlord_id', r.landlord_id, 'landlord_name', up.full_name, 'enabled', up.whatsapp_enabled,
           'tenant_id', r.tenant_id, 'tenant_name', t.name, 'property_id', r.property_id, 'property_address', p.address,
           'link_state', private.link_state(r.landlord_id, routing_candidates.phone),
           'conversation_status', (select cv.status from public.whatsapp_conversations cv
                                   where cv.landlord_id = r.landlord_id and cv.tenant_phone = routing_candidates.phone))
         order by r.landlord_id), '[]')
  from private.tenant_landlord_routing r
  join public.user_profiles up on up.id = r.landlord_id
  join public.tenants t on t.id = r.tenant_id
  join public.properties p on p.id = r.property_id
  where r.tenant_phone = routing_candidates.phone
$$;

create or replace function public.refresh_tenant_landlord_routing()
returns integer
language plpgsql
security definer -- rewrites the private routing table; service_role only
set search_path = ''
as $$
declare
  n integer;
begin
  -- Rows that differ from the defining query go, missing ones come: a repair touches only what
  -- is wrong (and no unqualified DELETE, which hosted Supabase's pg-safeupdate refuses).
  -- EXCLUSIVE: routers keep reading while it runs; writers wait.
  lock table private.tenant_landlord_routing in exclusive mode;
  delete from private.tenant_landlord_routing r
  where (r.tenant_phone, r.landlord_id) in (
    select x.tenant_phone, x.landlord_id from (select * from private.tenant_landlord_routing
                                               except select * from private.tenant_landlord_routing_source) x);
  insert into private.tenant_landlord_routing
    select * from private.tenant_landlord_routing_source except select * from private.tenant_landlord_routing;
  select count(*) into n from private.tenant_landlord_routing;
  return n;
end
$$;

-- Data step: the new table from the defining query.
select public.refresh_tenant_landlord_routing();
