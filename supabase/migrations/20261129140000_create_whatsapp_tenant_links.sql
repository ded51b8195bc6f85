-- Why: on one shared number anyone can sign up, type any phone into tenants and hold an active
-- lease on their own property. Who may start a conversation with a phone, and who receives its
-- messages when several landlords claim it, must rest on facts the tenant created. Each
-- (landlord, tenant phone) pair has a link whose state only the tenant moves:
--   unconfirmed  no row yet: the landlord merely typed the phone in;
--   confirmed    the tenant tapped yes on ZenRent's consent request, picked this landlord in
--                the picker, wrote while this landlord was the phone's only candidate, or wrote
--                to this landlord's own number before (multi-WABA history);
--   declined     the tenant tapped no or report: this landlord can no longer message the phone.
-- Landlords read their own links (to show "consent pending"); every write goes through
-- private.set_link_state().

create table public.whatsapp_tenant_links (
  landlord_id uuid not null references public.user_profiles (id) on delete cascade,
  tenant_phone text not null check (tenant_phone ~ '^[1-9][0-9]{7,14}$'),
  state text not null check (state in ('unconfirmed', 'confirmed', 'declined')),
  state_via text check (state_via in ('consent_yes', 'picker', 'only_candidate', 'history', 'consent_no', 'report')),
  state_changed_at timestamptz,
  consent_requested_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint whatsapp_tenant_links_pkey primary key (landlord_id, tenant_phone),
  constraint whatsapp_tenant_links_state_has_cause check (state = 'unconfirmed' or (state_via is not null and state_changed_at is not null))
);
comment on table public.whatsapp_tenant_links is
  'Per (landlord, tenant phone): what the tenant said about this landlord. No row means unconfirmed.';
comment on column public.whatsapp_tenant_links.state_via is
  'What set the state: consent_yes, picker, only_candidate, history (confirmed); consent_no, report (declined).';
comment on column public.whatsapp_tenant_links.consent_requested_at is 'When ZenRent last asked the tenant to confirm this landlord.';
-- Routing reads the links of every candidate of one phone.
create index whatsapp_tenant_links_phone_idx on public.whatsapp_tenant_links (tenant_phone);

create trigger whatsapp_tenant_links_set_updated_at before update on public.whatsapp_tenant_links
  for each row execute function private.trg_set_updated_at();

alter table public.whatsapp_tenant_links enable row level security;
revoke all on public.whatsapp_tenant_links from anon, authenticated;
grant select on public.whatsapp_tenant_links to authenticated;
grant all on public.whatsapp_tenant_links to service_role;

create policy "landlords can read their tenant links" on public.whatsapp_tenant_links
  for select to authenticated using (landlord_id = (select auth.uid()));

create function private.link_state(landlord_id uuid, phone text)
returns text
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce((select l.state from public.whatsapp_tenant_links l
                   where l.landlord_id = link_state.landlord_id and l.tenant_phone = link_state.phone), 'unconfirmed')
$$;
comment on function private.link_state(uuid, text) is 'unconfirmed, confirmed or declined: what the tenant said about this landlord.';

-- The one place a link changes. The tenant's own answers (consent_yes, picker, consent_no,
-- report) always apply; what ZenRent infers (only_candidate, history) only confirms a link the
-- tenant has not declined. Returns the state the link had before.
create function private.set_link_state(landlord_id uuid, phone text, state text, via text)
returns text
language plpgsql
security invoker
set search_path = ''
as $$
declare
  before text := private.link_state(landlord_id, phone);
begin
  if (state, via) not in (('confirmed', 'consent_yes'), ('confirmed', 'picker'), ('confirmed', 'only_candidate'),
                          ('confirmed', 'history'), ('declined', 'consent_no'), ('declined', 'report')) then
    raise exception using errcode = '22023', detail = 'invalid_value',
      message = format('invalid link change %s via %s', state, via), hint = 'see whatsapp_tenant_links.state_via';
  end if;
  if before = state or (via in ('only_candidate', 'history') and before = 'declined') then
    return before;
  end if;
  insert into public.whatsapp_tenant_links as l (landlord_id, tenant_phone, state, state_via, state_changed_at)
  values (set_link_state.landlord_id, phone, state, via, now())
  on conflict on constraint whatsapp_tenant_links_pkey do update
    set state = excluded.state, state_via = excluded.state_via, state_changed_at = excluded.state_changed_at;
  return before;
end
$$;
comment on function private.set_link_state(uuid, text, text, text) is
  'Move a link (tenant answers always; only_candidate/history never over a decline). Returns the previous state.';
