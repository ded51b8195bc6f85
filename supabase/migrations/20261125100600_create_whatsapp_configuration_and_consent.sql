-- Why: the central number's configuration is one row in private.whatsapp_settings, changed only
-- through a service-role RPC (scripts/run sets the phone number id). Tenants' consent (STOP /
-- START) and the once-a-day courtesy and clarification replies are tracked per phone.

create or replace function public.configure_whatsapp(settings jsonb)
returns jsonb
language plpgsql
security definer -- writes private settings; service_role only
set search_path = ''
as $$
declare
  allowed text[] := array['phone_number_id', 'display_phone_number', 'default_country', 'courtesy_reply_text',
                          'clarification_reply_text', 'opt_out_ack_text', 'opt_in_ack_text', 'outbound_max_attempts',
                          'notify_listeners'];
  unknown text;
  s private.whatsapp_settings;
begin
  if settings is null or jsonb_typeof(settings) <> 'object' then
    raise exception using errcode = '22023', message = 'settings must be a JSON object',
      hint = 'e.g. {"phone_number_id": "1234567890"}';
  end if;
  select k into unknown from jsonb_object_keys(settings) k where k <> all (allowed) limit 1;
  if unknown is not null then
    raise exception using errcode = '22023', message = format('unknown setting %L', unknown),
      hint = 'settable: ' || array_to_string(allowed, ', ');
  end if;
  if settings ? 'default_country' then
    perform private.normalize_phone('0', upper(settings ->> 'default_country'));  -- 22023 when unsupported
  end if;
  update private.whatsapp_settings w set
    phone_number_id = case when settings ? 'phone_number_id' then settings ->> 'phone_number_id' else w.phone_number_id end,
    display_phone_number = case when settings ? 'display_phone_number' then settings ->> 'display_phone_number' else w.display_phone_number end,
    default_country = coalesce(upper(settings ->> 'default_country'), w.default_country),
    courtesy_reply_text = coalesce(settings ->> 'courtesy_reply_text', w.courtesy_reply_text),
    clarification_reply_text = coalesce(settings ->> 'clarification_reply_text', w.clarification_reply_text),
    opt_out_ack_text = coalesce(settings ->> 'opt_out_ack_text', w.opt_out_ack_text),
    opt_in_ack_text = coalesce(settings ->> 'opt_in_ack_text', w.opt_in_ack_text),
    outbound_max_attempts = coalesce((settings ->> 'outbound_max_attempts')::int, w.outbound_max_attempts),
    notify_listeners = coalesce((settings ->> 'notify_listeners')::boolean, w.notify_listeners),
    updated_at = now()
  returning * into s;
  -- National numbers are read in the default country: re-read every tenant's phone when it
  -- changes (the routing table follows through the tenants trigger).
  if settings ? 'default_country' then
    update public.tenants t set phone_e164 = private.normalize_phone(t.phone, s.default_country)
    where t.phone is not null and t.phone_e164 is distinct from private.normalize_phone(t.phone, s.default_country);
  end if;
  return to_jsonb(s) - 'id';
end
$$;
comment on function public.configure_whatsapp(jsonb) is
  'Service role: change the central number''s settings (phone_number_id, default_country, reply texts, ...). Returns them.';
revoke execute on function public.configure_whatsapp(jsonb) from public, anon, authenticated;
grant execute on function public.configure_whatsapp(jsonb) to service_role;

-- Per-phone consent and reply throttling.
create table private.phone_preferences (
  phone text primary key check (phone ~ '^[1-9][0-9]{7,14}$'),
  opted_out boolean not null default false,
  opted_out_at timestamptz,
  opted_in_at timestamptz,
  last_courtesy_reply_at timestamptz,
  last_clarification_reply_at timestamptz,
  updated_at timestamptz not null default now()
);
comment on table private.phone_preferences is 'Per tenant phone: STOP/START consent and when ZenRent last replied on its own.';
alter table private.phone_preferences enable row level security;
revoke all on private.phone_preferences from public, anon, authenticated, service_role;

create or replace function private.is_opted_out(phone text)
returns boolean
language sql
stable
security definer -- answers one yes/no question about a private table
set search_path = ''
as $$
  select coalesce((select p.opted_out from private.phone_preferences p where p.phone = is_opted_out.phone), false)
$$;
comment on function private.is_opted_out(text) is 'The phone sent STOP and has not sent START since.';
grant execute on function private.is_opted_out(text) to authenticated, service_role;

-- ZenRent's own replies (courtesy, clarification, consent acknowledgements) go through the same queue.
create or replace function private.queue_system_reply(phone text, body text, reason text)
returns uuid
language plpgsql
security invoker
set search_path = ''
as $$
declare
  id uuid;
begin
  insert into public.whatsapp_messages (direction, type, body, status, routing_status, outbound_kind, tenant_phone,
                                        to_phone, is_from_tenant, routing_metadata, sent_at)
  values ('outgoing', 'text', queue_system_reply.body, 'queued', 'system', 'text', queue_system_reply.phone,
          queue_system_reply.phone, false, jsonb_build_object('reason', reason), now())
  returning whatsapp_messages.id into id;
  return id;
end
$$;
comment on function private.queue_system_reply(text, text, text) is 'Queue a message from ZenRent itself (no landlord, no prefix).';
