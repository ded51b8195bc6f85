-- Why: the tenant answers ZenRent with a tap, not by typing: a consent request has Yes / No /
-- Report buttons, and the picker lists the candidate tenancies of a shared phone. The id WhatsApp
-- sends back with a tap is an opaque random token bound to the phone that received it and
-- expiring after choice_ttl_days (never a raw landlord or tenancy id: one tenant must not be
-- able to answer for another, and ids must reveal nothing). Here: the tokens, and the
-- interactive objects built within Meta's limits (body <= 1,024 characters, button title <= 20,
-- row title <= 24, row description <= 72, at most 3 buttons or 10 rows).

create table private.tenant_choices (
  token text primary key check (token ~ '^zr[0-9a-f]{32}$'),
  phone text not null check (phone ~ '^[1-9][0-9]{7,14}$'),
  kind text not null check (kind in ('consent_yes', 'consent_no', 'consent_report', 'pick', 'pick_none')),
  landlord_id uuid references public.user_profiles (id) on delete cascade,
  tenant_id uuid,
  property_id uuid,
  label text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  constraint tenant_choices_landlord_when_needed check (kind = 'pick_none' or landlord_id is not null)
);
comment on table private.tenant_choices is
  'Options ZenRent offered a tenant phone (consent answers, picker rows), by the opaque token WhatsApp returns on a tap.';
comment on column private.tenant_choices.label is 'What the tenant saw for this option (for support and the audit).';
create index tenant_choices_phone_idx on private.tenant_choices (phone, created_at desc);
create index tenant_choices_landlord_id_idx on private.tenant_choices (landlord_id);
alter table private.tenant_choices enable row level security;
revoke all on private.tenant_choices from public, anon, authenticated, service_role;

create function private.new_choice(phone text, kind text, label text, landlord_id uuid default null,
                                   tenant_id uuid default null, property_id uuid default null)
returns text
language plpgsql
security invoker
set search_path = ''
as $$
declare
  token text := 'zr' || replace(gen_random_uuid()::text, '-', '');
begin
  insert into private.tenant_choices (token, phone, kind, label, landlord_id, tenant_id, property_id, expires_at)
  values (token, new_choice.phone, new_choice.kind, new_choice.label, new_choice.landlord_id, new_choice.tenant_id,
          new_choice.property_id,
          now() + make_interval(days => (select s.choice_ttl_days from private.whatsapp_settings s)));
  return token;
end
$$;
comment on function private.new_choice(text, text, text, uuid, uuid, uuid) is 'A fresh opaque option token for this phone.';

-- One line of user-typed text for a WhatsApp field of at most n characters: whitespace runs
-- (newlines included) become one space, and a cut ends in an ellipsis.
create function private.fit_text(value text, n integer)
returns text
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select case when char_length(v) <= n then v else rtrim(left(v, n - 1)) || '…' end
  from (select btrim(regexp_replace(coalesce(value, ''), '\s+', ' ', 'g')) as v) x
$$;
comment on function private.fit_text(text, integer) is 'Text on one line, at most n characters (cut with an ellipsis).';

create function private.fill_text(template text, landlord text, property text)
returns text
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select replace(replace(template, '{landlord}', private.fit_text(landlord, 60)), '{property}', private.fit_text(property, 120))
$$;
comment on function private.fill_text(text, text, text) is 'A settings text with {landlord} and {property} filled in (each on one line, cut).';

-- Consent request inside the service window: three reply buttons.
create function private.consent_interactive(phone text, landlord_id uuid, landlord_name text, property_address text)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  label text := private.fit_text(landlord_name, 60) || ', ' || private.fit_text(property_address, 120);
begin
  return jsonb_build_object(
    'type', 'button',
    'body', jsonb_build_object('text', private.fit_text(private.fill_text(
      (select s.consent_request_text from private.whatsapp_settings s), landlord_name, property_address), 1024)),
    'action', jsonb_build_object('buttons', jsonb_build_array(
      jsonb_build_object('type', 'reply', 'reply', jsonb_build_object(
        'id', private.new_choice(phone, 'consent_yes', label, landlord_id), 'title', 'Yes, my landlord')),
      jsonb_build_object('type', 'reply', 'reply', jsonb_build_object(
        'id', private.new_choice(phone, 'consent_no', label, landlord_id), 'title', 'Not my landlord')),
      jsonb_build_object('type', 'reply', 'reply', jsonb_build_object(
        'id', private.new_choice(phone, 'consent_report', label, landlord_id), 'title', 'Report spam')))));
end
$$;
comment on function private.consent_interactive(text, uuid, text, text) is
  'Interactive reply buttons asking the tenant to confirm a landlord (Yes / Not my landlord / Report spam).';

-- Consent request outside the window: the approved utility template (settings
-- consent_template_name), body {{1}} landlord, {{2}} property, three quick-reply buttons whose
-- payloads are the tokens.
create function private.consent_template(phone text, landlord_id uuid, landlord_name text, property_address text)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  cfg private.whatsapp_settings;
  label text := private.fit_text(landlord_name, 60) || ', ' || private.fit_text(property_address, 120);
begin
  select * into cfg from private.whatsapp_settings;
  return jsonb_build_object(
    'name', cfg.consent_template_name,
    'language', jsonb_build_object('code', cfg.consent_template_language),
    'components', jsonb_build_array(
      jsonb_build_object('type', 'body', 'parameters', jsonb_build_array(
        jsonb_build_object('type', 'text', 'text', private.fit_text(landlord_name, 60)),
        jsonb_build_object('type', 'text', 'text', private.fit_text(property_address, 120)))),
      jsonb_build_object('type', 'button', 'sub_type', 'quick_reply', 'index', '0', 'parameters', jsonb_build_array(
        jsonb_build_object('type', 'payload', 'payload', private.new_choice(phone, 'consent_yes', label, landlord_id)))),
      jsonb_build_object('type', 'button', 'sub_type', 'quick_reply', 'index', '1', 'parameters', jsonb_build_array(
        jsonb_build_object('type', 'payload', 'payload', private.new_choice(phone, 'consent_no', label, landlord_id)))),
      jsonb_build_object('type', 'button', 'sub_type', 'quick_reply', 'index', '2', 'parameters', jsonb_build_array(
        jsonb_build_object('type', 'payload', 'payload', private.new_choice(phone, 'consent_report', label, landlord_id))))));
end
$$;
comment on function private.consent_template(text, uuid, text, text) is
  'The consent request as the approved utility template: landlord and property as body parameters, tokens as quick-reply payloads.';

-- The picker: one option per candidate tenancy (landlord display name and property address).
-- options: [{landlord_id, landlord_name, tenant_id, property_id, property_address}, ...] in the
-- order to show. Up to 3: reply buttons numbered to match the list in the body (two landlords
-- may share a display name; the body shows each address in full). 4 to 10: a list. More: the
-- first 9 and "Someone else", which leaves the messages with ZenRent support.
create function private.picker_interactive(phone text, options jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  n integer := jsonb_array_length(options);
  shown jsonb;
  lines text;
  body text;
begin
  if n < 1 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'a picker needs at least one option',
      hint = 'pass the candidate tenancies';
  end if;
  shown := case when n > 10 then (select jsonb_agg(o order by i) from jsonb_array_elements(options) with ordinality x (o, i) where i <= 9)
                else options end;
  -- Every option gets an equal share of what the intro leaves of the 1,024 characters.
  body := private.fit_text((select s.picker_text from private.whatsapp_settings s), 300);
  select string_agg(private.fit_text(format('%s. %s, %s', i, private.fit_text(o ->> 'landlord_name', 60), o ->> 'property_address'),
                                     (1024 - char_length(body) - 2) / jsonb_array_length(shown) - 1),
                    e'\n' order by i)
    into lines from jsonb_array_elements(shown) with ordinality x (o, i);
  body := body || e'\n\n' || lines;
  if n <= 3 then
    return jsonb_build_object('type', 'button', 'body', jsonb_build_object('text', body),
      'action', jsonb_build_object('buttons', (
        select jsonb_agg(jsonb_build_object('type', 'reply', 'reply', jsonb_build_object(
                 'id', private.new_choice(phone, 'pick', private.fit_text(o ->> 'landlord_name', 60) || ', '
                                          || private.fit_text(o ->> 'property_address', 120),
                                          (o ->> 'landlord_id')::uuid, (o ->> 'tenant_id')::uuid, (o ->> 'property_id')::uuid),
                 'title', private.fit_text(i || '. ' || (o ->> 'landlord_name'), 20))) order by i)
        from jsonb_array_elements(shown) with ordinality x (o, i))));
  end if;
  return jsonb_build_object('type', 'list', 'body', jsonb_build_object('text', body),
    'action', jsonb_build_object('button', 'Choose', 'sections', jsonb_build_array(jsonb_build_object(
      'title', 'Your landlords',
      'rows', (select jsonb_agg(r order by i) from (
                 select i, jsonb_build_object(
                   'id', private.new_choice(phone, 'pick', private.fit_text(o ->> 'landlord_name', 60) || ', '
                                            || private.fit_text(o ->> 'property_address', 120),
                                            (o ->> 'landlord_id')::uuid, (o ->> 'tenant_id')::uuid, (o ->> 'property_id')::uuid),
                   'title', private.fit_text(i || '. ' || (o ->> 'landlord_name'), 24),
                   'description', private.fit_text(o ->> 'property_address', 72)) as r
                 from jsonb_array_elements(shown) with ordinality x (o, i)
                 union all
                 select 10, jsonb_build_object('id', private.new_choice(phone, 'pick_none', 'Someone else'),
                                               'title', 'Someone else',
                                               'description', 'ZenRent support will pass your message on')
                 where n > 10) y)))));
end
$$;
comment on function private.picker_interactive(text, jsonb) is
  'The interactive picker for a shared phone: buttons (<= 3 options) or a list (4-10; more: 9 and "Someone else"), within Meta''s limits.';
