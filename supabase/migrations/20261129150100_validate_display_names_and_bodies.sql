-- Why: a landlord's display name is the "From <name> via ZenRent:" signature on every message
-- from the one shared number, so it must not be forgeable. `full_name` accepted newlines and any
-- text: a name of "<victim> via ZenRent:" + newline + a payment request made a message start with
-- a fake "From <victim> via ZenRent:" line; a body of one zero-width space passed the empty check.
--   * private.one_line() is the one definition of "shown on one line": format and zero-width
--     characters (Unicode Cf and invisible fillers) removed; controls, line and paragraph
--     separators and whitespace runs (Cc, Zl, Zp, Zs) become one space; trimmed. Every user text
--     put into a WhatsApp field goes through it (private.fit_text).
--   * private.has_visible_text(): something is left after that.
--   * Display names are validated on write (22023 invalid_display_name): one line as above,
--     at most 60 characters, nothing that says "ZenRent" (no "via ZenRent", however spaced);
--     messages are sent only under a valid name (legacy rows are refused until edited).
-- The character classes were generated from Unicode 14 (Python's unicodedata) categories.

create function private.one_line(value text)
returns text
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select btrim(regexp_replace(regexp_replace(coalesce(value, ''),
    '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F\u115F\u1160\u3164\uFFA0\u2800]', '', 'g'),
    '[\u0001-\u001F\u007F-\u009F\u2028\u2029\u0020\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000\s]+', ' ', 'g'))
$$;
comment on function private.one_line(text) is
  'User text on one line: format/zero-width characters removed, controls and separators folded to single spaces, trimmed.';

create function private.has_visible_text(value text)
returns boolean
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select private.one_line(value) <> ''
$$;
comment on function private.has_visible_text(text) is 'The text shows something: a character that is not whitespace, control or format.';

create function private.display_name_problem(name text)
returns text
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select case
    when not private.has_visible_text(name) then 'a display name needs a visible character'
    when name <> private.one_line(name)
      then 'a display name is one line of plain text: no line breaks, tabs, control, format or zero-width characters, '
           || 'single spaces, none at either end'
    when char_length(name) > 60 then format('a display name has at most 60 characters, not %s', char_length(name))
    when lower(regexp_replace(name, '[^[:alnum:]]', '', 'g')) like '%zenrent%' then 'a display name cannot mention ZenRent'
  end
$$;
comment on function private.display_name_problem(text) is 'Why a display name is not acceptable, or null when it is.';

create function private.require_display_name(name text)
returns text
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  problem text := private.display_name_problem(name);
begin
  if problem is not null then
    raise exception using errcode = '22023', detail = 'invalid_display_name', message = problem,
      hint = 'messages go out as "From <display name> via ZenRent:"; e.g. "Rita Real" or "Harbour Lettings Ltd"';
  end if;
  return name;
end
$$;
comment on function private.require_display_name(text) is 'The name when it is a valid display name; 22023 invalid_display_name otherwise.';

create function private.trg_validate_display_name()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  perform private.require_display_name(new.full_name);
  return new;
end
$$;
comment on function private.trg_validate_display_name() is 'Trigger: user_profiles.full_name is a valid display name (22023 invalid_display_name).';

-- Pure functions of their argument, called by the trigger as whoever writes the profile.
grant execute on function private.require_display_name(text), private.display_name_problem(text), private.one_line(text),
  private.has_visible_text(text) to authenticated, service_role;

create trigger user_profiles_validate_display_name before insert or update of full_name on public.user_profiles
  for each row execute function private.trg_validate_display_name();

create or replace function private.fit_text(value text, n integer)
returns text
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select case when char_length(v) <= n then v else rtrim(left(v, n - 1)) || '…' end
  from (select private.one_line(value) as v) x
$$;

create or replace function public.send_whatsapp_message(conversation_id uuid, body text)
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
  -- A body of spaces, newlines, tabs or zero-width characters would send the bare signature.
  if not private.has_visible_text(body) then
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
  perform private.require_display_name(landlord.full_name);   -- the signature is built only from a valid name
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

create or replace function private.request_consent(landlord public.user_profiles, c public.whatsapp_conversations)
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
  perform private.require_display_name(landlord.full_name);
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
