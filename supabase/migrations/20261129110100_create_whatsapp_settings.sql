-- Why: the central number's configuration is one row in private.whatsapp_settings, changed only
-- through a service-role RPC (scripts/run stores the phone number id from the environment).
-- National phone numbers are read in its default_country; changing it re-reads every tenant's
-- phone (the routing table follows through the tenants trigger).

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

create function private.default_country()
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

create function public.configure_whatsapp(settings jsonb)
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
    raise exception using errcode = '22023', message = 'settings must be a JSON object', detail = 'invalid_value',
      hint = 'e.g. {"phone_number_id": "1234567890"}';
  end if;
  select k into unknown from jsonb_object_keys(settings) k where k <> all (allowed) limit 1;
  if unknown is not null then
    raise exception using errcode = '22023', message = format('unknown setting %L', unknown), detail = 'invalid_value',
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
  where w.id   -- the one row (hosted Supabase's pg-safeupdate refuses an UPDATE without WHERE)
  returning * into s;
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
