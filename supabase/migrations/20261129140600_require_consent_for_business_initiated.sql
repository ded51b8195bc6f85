-- Why: Meta requires a recipient's opt-in before business-initiated messages, and rates the one
-- central number by how recipients react: one landlord's spam lowers the quality rating and the
-- messaging limits of every landlord on ZenRent. So:
--   * a template (business-initiated) needs a confirmed link; for an unconfirmed one,
--     start_whatsapp_conversation() sends ZenRent's consent request instead (reply buttons
--     inside the phone's 24-hour window, else the approved utility template), at most once per
--     landlord and phone per choice_ttl_days, and send_whatsapp_template() answers 55000
--     consent_pending; a declined link refuses every message (55000 consent_declined);
--   * templates must be registered, with their number of body parameters (22023
--     template_not_registered);
--   * a landlord may cause at most business_initiated_daily_limit business-initiated messages
--     (templates and consent requests) per 24 hours, unless support raised their own limit
--     (55000 daily_limit_reached).

create table private.landlord_limits (
  landlord_id uuid primary key references public.user_profiles (id) on delete cascade,
  business_initiated_daily_limit integer not null check (business_initiated_daily_limit between 0 and 100000),
  set_by uuid,
  reason text not null,
  updated_at timestamptz not null default now()
);
comment on table private.landlord_limits is 'Per-landlord daily limit of business-initiated messages set by support (else the setting).';
alter table private.landlord_limits enable row level security;
revoke all on private.landlord_limits from public, anon, authenticated, service_role;

-- Business-initiated messages a landlord caused: their templates and ZenRent's consent requests
-- about them (the only ZenRent messages filed with a landlord).
create index whatsapp_messages_business_initiated_idx on public.whatsapp_messages (landlord_id, created_at)
  where direction = 'outgoing' and (outbound_kind = 'template' or routing_status = 'system');

create function private.check_daily_limit(landlord_id uuid)
returns void
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  cap integer := coalesce((select l.business_initiated_daily_limit from private.landlord_limits l
                           where l.landlord_id = check_daily_limit.landlord_id),
                          (select s.business_initiated_daily_limit from private.whatsapp_settings s));
  used integer;
begin
  select count(*) into used from public.whatsapp_messages m
  where m.landlord_id = check_daily_limit.landlord_id and m.direction = 'outgoing'
    and (m.outbound_kind = 'template' or m.routing_status = 'system') and m.created_at > now() - interval '24 hours';
  if used >= cap then
    raise exception using errcode = '55000', detail = 'daily_limit_reached',
      message = format('%s business-initiated messages in the last 24 hours: the limit is %s', used, cap),
      hint = 'templates and consent requests go out from the one ZenRent number; ask ZenRent support to raise the limit';
  end if;
end
$$;
comment on function private.check_daily_limit(uuid) is
  'Refuses (55000 daily_limit_reached) when the landlord has used their business-initiated messages of the last 24 hours.';

-- Ask the tenant to confirm this landlord, unless asked within choice_ttl_days. Returns whether
-- a request was queued.
create function private.request_consent(landlord public.user_profiles, c public.whatsapp_conversations)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  cfg private.whatsapp_settings;
  link public.whatsapp_tenant_links;
  address text := coalesce((select p.address from public.properties p where p.id = c.property_id), '');
  body text;
begin
  select * into cfg from private.whatsapp_settings;
  select * into link from public.whatsapp_tenant_links l where l.landlord_id = landlord.id and l.tenant_phone = c.tenant_phone for update;
  if link.state in ('confirmed', 'declined')
     or link.consent_requested_at > now() - make_interval(days => cfg.choice_ttl_days)
     or private.is_opted_out(c.tenant_phone) then
    return false;
  end if;
  perform private.check_daily_limit(landlord.id);
  body := private.fill_text(cfg.consent_request_text, landlord.full_name, address);
  if private.phone_window_open(c.tenant_phone) then
    perform private.queue_zenrent_message(c.tenant_phone, 'consent_request', body,
      interactive => private.consent_interactive(c.tenant_phone, landlord.id, landlord.full_name, address),
      landlord_id => landlord.id, conversation_id => c.id);
  elsif private.registered_template(cfg.consent_template_name, cfg.consent_template_language) is null then
    raise exception using errcode = '55000', detail = 'not_configured',
      message = format('the consent template %s (%s) is not registered', cfg.consent_template_name, cfg.consent_template_language),
      hint = 'ZenRent must approve it in WhatsApp Manager and register it with approve_whatsapp_template()';
  else
    perform private.queue_zenrent_message(c.tenant_phone, 'consent_request', body,
      template => private.consent_template(c.tenant_phone, landlord.id, landlord.full_name, address),
      landlord_id => landlord.id, conversation_id => c.id);
  end if;
  insert into public.whatsapp_tenant_links as l (landlord_id, tenant_phone, state, consent_requested_at)
  values (landlord.id, c.tenant_phone, 'unconfirmed', now())
  on conflict on constraint whatsapp_tenant_links_pkey do update set consent_requested_at = now();
  return true;
end
$$;
comment on function private.request_consent(public.user_profiles, public.whatsapp_conversations) is
  'Queue ZenRent''s consent request for this landlord (buttons in the window, else the template), at most once per choice_ttl_days.';

create or replace function private.check_can_send(landlord public.user_profiles, c public.whatsapp_conversations, free_text boolean)
returns void
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  link text := private.link_state(landlord.id, c.tenant_phone);
begin
  if not landlord.whatsapp_enabled then
    raise exception using errcode = '55000', message = 'WhatsApp is turned off for this landlord',
      detail = 'landlord_not_opted_in', hint = 'opt in with set_whatsapp_opt_in(true)';
  end if;
  if c.status = 'blocked' then
    raise exception using errcode = '55000', message = 'this conversation is blocked', detail = 'conversation_blocked',
      hint = 'unblock it with set_conversation_status(id, ''active'')';
  end if;
  if private.is_opted_out(c.tenant_phone) then
    raise exception using errcode = '55000', message = 'the tenant has opted out of WhatsApp messages (STOP)',
      detail = 'tenant_opted_out', hint = 'the tenant must send START before any message can be sent';
  end if;
  if link = 'declined' then
    raise exception using errcode = '55000', detail = 'consent_declined',
      message = 'the tenant has said you are not their landlord',
      hint = 'you can no longer message this phone through ZenRent; the tenant can still write to you';
  end if;
  if free_text and not private.service_window_open(c.id) then
    raise exception using errcode = '55000', detail = 'window_closed',
      message = 'the 24-hour customer service window for this tenant is closed',
      hint = 'send a template with send_whatsapp_template(); free text is allowed again after the tenant writes';
  end if;
  if not free_text and link <> 'confirmed' then
    raise exception using errcode = '55000', detail = 'consent_pending',
      message = 'the tenant has not confirmed you yet',
      hint = 'start_whatsapp_conversation() asks them (at most once a week); templates go out once they tap yes';
  end if;
end
$$;

create or replace function public.send_whatsapp_template(conversation_id uuid, template_name text, language text, parameters jsonb default '[]')
returns uuid
language plpgsql
security definer -- landlords cannot insert messages directly; this enforces the sending rules
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  c public.whatsapp_conversations := private.own_conversation(conversation_id, me.id);
  params jsonb := coalesce(parameters, '[]'::jsonb);
  registered private.whatsapp_templates;
  tpl jsonb;
  id uuid;
begin
  if jsonb_typeof(params) <> 'array' or exists (select 1 from jsonb_array_elements(params) p where jsonb_typeof(p) <> 'string') then
    raise exception using errcode = '22023', message = 'template parameters must be a JSON array of strings', detail = 'invalid_value',
      hint = 'e.g. ["Flat 2", "Thursday"]; the landlord name is added as the first parameter';
  end if;
  -- Who may be messaged first (opt-in, block, STOP, consent), then what (the registered template).
  perform private.check_can_send(me, c, false);
  registered := private.registered_template(template_name, language);
  if registered.name is null then
    raise exception using errcode = '22023', detail = 'template_not_registered',
      message = format('template %s (%s) is not registered', template_name, language),
      hint = 'only templates ZenRent approved in WhatsApp Manager can be sent; ask ZenRent support';
  end if;
  if registered.body_parameter_count <> 1 + jsonb_array_length(params) then
    raise exception using errcode = '22023', detail = 'template_not_registered',
      message = format('template %s takes %s parameters after your name, not %s', template_name,
                       registered.body_parameter_count - 1, jsonb_array_length(params)),
      hint = 'the landlord name is the first body parameter; pass the others in order';
  end if;
  perform private.check_daily_limit(me.id);
  -- The landlord's name travels as the first body parameter.
  tpl := jsonb_build_object('name', template_name, 'language', jsonb_build_object('code', language),
    'components', jsonb_build_array(jsonb_build_object('type', 'body', 'parameters',
      (select jsonb_agg(jsonb_build_object('type', 'text', 'text', v) order by o)
       from (select me.full_name as v, 0::bigint as o
             union all select p, o from jsonb_array_elements_text(params) with ordinality as t (p, o)) x))));
  insert into public.whatsapp_messages (direction, type, body, status, routing_status, outbound_kind, template,
                                        landlord_id, tenant_id, property_id, conversation_id, tenant_phone, to_phone,
                                        is_from_tenant, sent_at)
  values ('outgoing', 'template', format('[template %s] %s', template_name,
                                         (select string_agg(p, ' | ') from jsonb_array_elements_text(params) p)),
          'queued', 'outbound', 'template', tpl,
          me.id, c.tenant_id, c.property_id, c.id, c.tenant_phone, c.tenant_phone, false, now())
  returning whatsapp_messages.id into id;
  return id;
end
$$;

create or replace function public.start_whatsapp_conversation(tenant_id uuid)
returns uuid
language plpgsql
security definer -- creates a conversation row, which landlords cannot insert directly
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  t public.tenants;
  prop uuid;
  c public.whatsapp_conversations;
begin
  select * into t from public.tenants tn where tn.id = start_whatsapp_conversation.tenant_id and tn.user_id = me.id;
  if t.id is null then
    raise exception using errcode = 'P0002', message = 'tenant not found', detail = 'not_found', hint = 'pass one of your tenants';
  end if;
  select l.property_id into prop from public.leases l
    where l.tenant_id = t.id and l.status = 'active' order by l.start_date desc limit 1;
  if prop is null then
    raise exception using errcode = '55000', message = 'the tenant has no active lease', detail = 'no_active_lease',
      hint = 'conversations are for tenants with an active lease';
  end if;
  if t.phone_e164 is null then
    raise exception using errcode = '22023', message = 'the tenant has no valid phone number', detail = 'invalid_phone',
      hint = 'set tenants.phone to a number WhatsApp can reach, e.g. +44 7700 900123';
  end if;
  if not me.whatsapp_enabled then
    raise exception using errcode = '55000', message = 'WhatsApp is turned off for this landlord', detail = 'landlord_not_opted_in',
      hint = 'opt in with set_whatsapp_opt_in(true)';
  end if;
  if private.link_state(me.id, t.phone_e164) = 'declined' then
    raise exception using errcode = '55000', detail = 'consent_declined',
      message = 'the tenant has said you are not their landlord',
      hint = 'you can no longer message this phone through ZenRent; the tenant can still write to you';
  end if;
  insert into public.whatsapp_conversations as cv (landlord_id, tenant_id, tenant_phone, property_id)
  values (me.id, t.id, t.phone_e164, prop)
  on conflict (landlord_id, tenant_phone) do update set tenant_id = excluded.tenant_id, property_id = excluded.property_id
  returning cv.* into c;
  perform private.request_consent(me, c);
  return c.id;
end
$$;
comment on function public.start_whatsapp_conversation(uuid) is
  'Landlord: open (or find) the conversation with one of their tenants with an active lease. Returns its id. '
  'When the tenant has not confirmed the landlord yet, ZenRent sends its consent request (once a week at most).';

create function public.set_landlord_daily_limit(landlord_id uuid, daily_limit integer, reason text)
returns jsonb
language plpgsql
security definer -- writes the private limits table and the audit log; support and service role only
set search_path = ''
as $$
declare
  actor uuid := private.require_support_or_service_role();
  why text := nullif(btrim(reason), '');
begin
  if daily_limit is null or daily_limit not between 0 and 100000 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'daily_limit must be between 0 and 100000',
      hint = 'e.g. 500 for an agency onboarding its tenants';
  end if;
  if why is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'a reason is required',
      hint = 'e.g. "agency onboarding 400 tenants this week"';
  end if;
  if not exists (select 1 from public.user_profiles up where up.id = set_landlord_daily_limit.landlord_id) then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'landlord not found', hint = 'pass a landlord''s user id';
  end if;
  insert into private.landlord_limits as l (landlord_id, business_initiated_daily_limit, set_by, reason)
  values (set_landlord_daily_limit.landlord_id, daily_limit, actor, why)
  on conflict on constraint landlord_limits_pkey do update set business_initiated_daily_limit = excluded.business_initiated_daily_limit,
    set_by = excluded.set_by, reason = excluded.reason, updated_at = now();
  insert into private.support_audit_log (actor_id, actor_email, actor_kind, action, landlord_id, reason, details)
  values (actor, (select auth.jwt()) ->> 'email', case when actor is null then 'service' else 'support' end,
          'set_daily_limit', set_landlord_daily_limit.landlord_id, why, jsonb_build_object('daily_limit', daily_limit));
  return jsonb_build_object('landlord_id', set_landlord_daily_limit.landlord_id, 'business_initiated_daily_limit', daily_limit);
end
$$;
comment on function public.set_landlord_daily_limit(uuid, integer, text) is
  'Support / service role: set one landlord''s daily limit of business-initiated messages (e.g. an agency onboarding). Audited.';
revoke execute on function public.set_landlord_daily_limit(uuid, integer, text) from public, anon, authenticated;
grant execute on function public.set_landlord_daily_limit(uuid, integer, text) to authenticated, service_role;
