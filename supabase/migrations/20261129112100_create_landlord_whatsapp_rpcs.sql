-- Why: everything a landlord does on WhatsApp goes through these few RPCs, which enforce the
-- rules a direct write could not: only the landlord's own conversations (others answer "not
-- found", never "forbidden", so they reveal nothing), opted in, not blocked, tenant not opted
-- out, the 24 h customer service window for free text (templates outside it), WhatsApp's
-- 4096-character limit, and the "From <name> via ZenRent:" signature on every reply.
-- Errors: SQLSTATE + a stable keyword in detail (docs/errors.md), e.g. 55000 window_closed.

-- The calling landlord's profile, or 42501.
create function private.current_landlord()
returns public.user_profiles
language plpgsql
stable
security definer -- reads the caller's own profile for the RPCs below
set search_path = ''
as $$
declare
  p public.user_profiles;
begin
  if (select auth.uid()) is null then
    raise exception using errcode = '42501', message = 'not signed in', detail = 'not_signed_in', hint = 'call this as an authenticated landlord';
  end if;
  select * into p from public.user_profiles up where up.id = (select auth.uid());
  if p.id is null then
    raise exception using errcode = '42501', message = 'no landlord profile for this user', detail = 'no_landlord_profile',
      hint = 'create the user_profiles row first';
  end if;
  return p;
end
$$;

-- The landlord's own conversation, or P0002 (also when it exists but is someone else's).
create function private.own_conversation(conversation_id uuid, landlord_id uuid)
returns public.whatsapp_conversations
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  c public.whatsapp_conversations;
begin
  select * into c from public.whatsapp_conversations cv
    where cv.id = own_conversation.conversation_id and cv.landlord_id = own_conversation.landlord_id;
  if c.id is null then
    raise exception using errcode = 'P0002', message = 'conversation not found', detail = 'not_found',
      hint = 'list your conversations with select on whatsapp_conversations';
  end if;
  return c;
end
$$;

-- The 24-hour customer service window. Meta's window is per phone; ours is per conversation
-- (stricter, so never outside Meta's): a landlord may write freely only to a tenant who wrote
-- to *them* through the central number in the last 24 h. A per-phone window would let a
-- landlord who added someone else's tenant observe that tenant's activity. Multi-WABA history
-- (user_id set) does not count: it was another number.
create function private.service_window_open(conversation_id uuid)
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(max(m.sent_at) > now() - interval '24 hours', false)
  from public.whatsapp_messages m
  where m.conversation_id = service_window_open.conversation_id and m.direction = 'incoming' and m.user_id is null
$$;
comment on function private.service_window_open(uuid) is
  'The tenant wrote into this conversation through the central number in the last 24 hours (free text allowed).';

-- The checks every outbound message passes. Window checked only for free text.
create function private.check_can_send(landlord public.user_profiles, c public.whatsapp_conversations, free_text boolean)
returns void
language plpgsql
stable
security invoker
set search_path = ''
as $$
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
      detail = 'tenant_opted_out',
      hint = 'the tenant must send START before any message can be sent';
  end if;
  if free_text and not private.service_window_open(c.id) then
      raise exception using errcode = '55000', detail = 'window_closed',
        message = 'the 24-hour customer service window for this tenant is closed',
        hint = 'send a template with send_whatsapp_template(); free text is allowed again after the tenant writes';
  end if;
end
$$;

comment on function private.current_landlord() is 'The calling landlord''s profile; 42501 not_signed_in / no_landlord_profile.';
comment on function private.own_conversation(uuid, uuid) is 'The landlord''s own conversation; P0002 not_found otherwise (also when it is someone else''s).';
comment on function private.check_can_send(public.user_profiles, public.whatsapp_conversations, boolean) is
  'The rules every landlord message passes (55000 landlord_not_opted_in, conversation_blocked, tenant_opted_out, window_closed).';

create function public.set_whatsapp_opt_in(enabled boolean, notifications_enabled boolean default null)
returns jsonb
language plpgsql
security definer -- landlords have no UPDATE privilege on the opt-in columns; this is the only way to change them
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  cancelled int := 0;
begin
  if enabled is null then
    raise exception using errcode = '22023', message = 'enabled must be true or false', detail = 'invalid_value', hint = 'set_whatsapp_opt_in(true)';
  end if;
  update public.user_profiles up set
    whatsapp_enabled = set_whatsapp_opt_in.enabled,
    whatsapp_opted_in_at = case when set_whatsapp_opt_in.enabled and not up.whatsapp_enabled then now() else up.whatsapp_opted_in_at end,
    whatsapp_notifications_enabled = coalesce(set_whatsapp_opt_in.notifications_enabled, up.whatsapp_notifications_enabled)
  where up.id = me.id
  returning * into me;
  if not enabled then
    -- Stop sending in this landlord's name at once.
    update public.whatsapp_messages m set status = 'failed', failed_at = now(),
      error_title = 'cancelled: the landlord turned WhatsApp off'
    where m.landlord_id = me.id and m.status = 'queued' and m.direction = 'outgoing';
    get diagnostics cancelled = row_count;
  end if;
  return jsonb_build_object('whatsapp_enabled', me.whatsapp_enabled, 'whatsapp_opted_in_at', me.whatsapp_opted_in_at,
                            'whatsapp_notifications_enabled', me.whatsapp_notifications_enabled,
                            'cancelled_messages', cancelled);
end
$$;
comment on function public.set_whatsapp_opt_in(boolean, boolean) is
  'Landlord: opt in to (or out of) the central ZenRent number, and optionally set notifications. '
  'Opting out stops routing to and sending from the landlord at once (queued messages are cancelled).';

create function public.send_whatsapp_message(conversation_id uuid, body text)
returns uuid
language plpgsql
security definer -- landlords cannot insert messages directly; this enforces the sending rules
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  c public.whatsapp_conversations := private.own_conversation(conversation_id, me.id);
  signature text := format('From %s via ZenRent:', me.full_name);
  id uuid;
begin
  -- btrim() strips spaces only: a body of newlines or tabs would send the bare signature.
  if body is null or body !~ '[^[:space:]]' then
    raise exception using errcode = '22023', message = 'message body is empty', detail = 'empty_body', hint = 'write something to send';
  end if;
  if length(signature) + 1 + length(body) > 4096 then
    raise exception using errcode = '22023', detail = 'message_too_long',
      message = format('message is %s characters with the signature; WhatsApp allows 4096', length(signature) + 1 + length(body)),
      hint = 'shorten the message or split it';
  end if;
  perform private.check_can_send(me, c, true);
  insert into public.whatsapp_messages (direction, type, body, landlord_signature, status, routing_status, outbound_kind,
                                        landlord_id, tenant_id, property_id, conversation_id, tenant_phone, to_phone,
                                        is_from_tenant, sent_at)
  values ('outgoing', 'text', send_whatsapp_message.body, signature, 'queued', 'outbound', 'text',
          me.id, c.tenant_id, c.property_id, c.id, c.tenant_phone, c.tenant_phone, false, now())
  returning whatsapp_messages.id into id;
  return id;
end
$$;
comment on function public.send_whatsapp_message(uuid, text) is
  'Landlord: queue a reply in one of their conversations. Sent as "From <name> via ZenRent:" + newline + body. '
  'Refused outside the 24 h window (send a template), when blocked, opted out, or not opted in.';

create function public.send_whatsapp_template(conversation_id uuid, template_name text, language text, parameters jsonb default '[]')
returns uuid
language plpgsql
security definer -- landlords cannot insert messages directly; this enforces the sending rules
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  c public.whatsapp_conversations := private.own_conversation(conversation_id, me.id);
  params jsonb := coalesce(parameters, '[]'::jsonb);
  tpl jsonb;
  id uuid;
begin
  -- Meta allows up to 512 characters; PostgreSQL regexes cap a bound at 255, so length is checked apart.
  if template_name is null or template_name !~ '^[a-z0-9_]+$' or length(template_name) > 512 then
    raise exception using errcode = '22023', message = format('invalid template name %L', template_name), detail = 'invalid_value',
      hint = 'template names are lowercase letters, digits and underscores, as approved in WhatsApp Manager';
  end if;
  if language is null or language !~ '^[a-z]{2,3}(_[A-Z]{2})?$' then
    raise exception using errcode = '22023', message = format('invalid template language %L', language), detail = 'invalid_value',
      hint = 'e.g. en, en_GB, pt_BR';
  end if;
  if jsonb_typeof(params) <> 'array' or exists (select 1 from jsonb_array_elements(params) p where jsonb_typeof(p) <> 'string') then
    raise exception using errcode = '22023', message = 'template parameters must be a JSON array of strings', detail = 'invalid_value',
      hint = 'e.g. ["Flat 2", "Thursday"]; the landlord name is added as the first parameter';
  end if;
  perform private.check_can_send(me, c, false);
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
comment on function public.send_whatsapp_template(uuid, text, text, jsonb) is
  'Landlord: queue an approved template (allowed outside the 24 h window). The landlord''s name is the first body parameter.';

create function public.start_whatsapp_conversation(tenant_id uuid)
returns uuid
language plpgsql
security definer -- creates a conversation row, which landlords cannot insert directly
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  t public.tenants;
  prop uuid;
  id uuid;
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
  insert into public.whatsapp_conversations as cv (landlord_id, tenant_id, tenant_phone, property_id)
  values (me.id, t.id, t.phone_e164, prop)
  on conflict (landlord_id, tenant_phone) do update set tenant_id = excluded.tenant_id, property_id = excluded.property_id
  returning cv.id into id;
  return id;
end
$$;
comment on function public.start_whatsapp_conversation(uuid) is
  'Landlord: open (or find) the conversation with one of their tenants with an active lease. Returns its id.';

create function public.mark_conversation_read(conversation_id uuid)
returns void
language plpgsql
security definer -- landlords cannot update conversations directly
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  c public.whatsapp_conversations := private.own_conversation(conversation_id, me.id);
begin
  update public.whatsapp_conversations cv set unread_count = 0 where cv.id = c.id and cv.unread_count <> 0;
end
$$;
comment on function public.mark_conversation_read(uuid) is 'Landlord: set a conversation''s unread count to zero.';

create function public.set_conversation_status(conversation_id uuid, status text)
returns void
language plpgsql
security definer -- landlords cannot update conversations directly
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  c public.whatsapp_conversations := private.own_conversation(conversation_id, me.id);
begin
  if status is null or status not in ('active', 'archived', 'blocked') then
    raise exception using errcode = '22023', message = format('invalid conversation status %L', status), detail = 'invalid_value',
      hint = 'one of active, archived, blocked';
  end if;
  update public.whatsapp_conversations cv set status = set_conversation_status.status where cv.id = c.id;
end
$$;
comment on function public.set_conversation_status(uuid, text) is
  'Landlord: archive (reopens on the next tenant message), block (stops routing from this tenant to this landlord only) or reactivate.';

-- Grants: landlords only, by full signature.
revoke execute on function public.set_whatsapp_opt_in(boolean, boolean), public.send_whatsapp_message(uuid, text),
  public.send_whatsapp_template(uuid, text, text, jsonb), public.start_whatsapp_conversation(uuid),
  public.mark_conversation_read(uuid), public.set_conversation_status(uuid, text)
  from public, anon, authenticated;
grant execute on function public.set_whatsapp_opt_in(boolean, boolean), public.send_whatsapp_message(uuid, text),
  public.send_whatsapp_template(uuid, text, text, jsonb), public.start_whatsapp_conversation(uuid),
  public.mark_conversation_read(uuid), public.set_conversation_status(uuid, text)
  to authenticated;
