-- Why: consent requests, the picker that replaces "please swipe to reply", their
-- acknowledgements, and the cap on business-initiated messages are configured with the rest of
-- the central number. Texts take {landlord} and {property}. configure_whatsapp() now accepts
-- every column of the settings row, so a new setting needs no change to it.

alter table private.whatsapp_settings
  drop column clarification_reply_text,
  add column consent_request_text text not null default
    'Hello! {landlord} ({property}) would like to message you on WhatsApp through ZenRent. Is this your landlord?',
  add column consent_template_name text not null default 'zenrent_consent_request'
    check (consent_template_name ~ '^[a-z0-9_]+$'),
  add column consent_template_language text not null default 'en'
    check (consent_template_language ~ '^[a-z]{2,3}(_[A-Z]{2})?$'),
  add column consent_yes_ack_text text not null default
    'Thank you. {landlord} can now message you here. Reply STOP at any time to stop all messages.',
  add column consent_no_ack_text text not null default
    'Understood: {landlord} will not message you through ZenRent.',
  add column consent_report_ack_text text not null default
    'Thank you for telling us. {landlord} cannot message you any more, and ZenRent support will look into it.',
  add column picker_text text not null default
    'Hello! This number is linked to more than one landlord on ZenRent. Who is your message for?',
  add column picker_ack_text text not null default
    'Thank you. Your messages now go to {landlord} ({property}).',
  add column picker_none_ack_text text not null default
    'Thank you. ZenRent support will make sure your message reaches the right person.',
  add column choice_expired_text text not null default
    'Sorry, that choice has expired. Please choose again from our newest message.',
  add column choice_ttl_days integer not null default 7 check (choice_ttl_days between 1 and 30),
  add column tenant_pin_days integer not null default 30 check (tenant_pin_days between 1 and 365),
  add column business_initiated_daily_limit integer not null default 20 check (business_initiated_daily_limit between 0 and 100000);

comment on column private.whatsapp_settings.business_initiated_daily_limit is
  'Business-initiated messages (templates, consent requests) a landlord may cause per 24 hours, unless support raised theirs.';

-- A tenant's ambiguous messages get a picker, at most once a day per phone. The table is private:
-- no client reads the column, only the router, replaced in this same set of migrations.
-- squawk-ignore renaming-column
alter table private.phone_preferences rename column last_clarification_reply_at to last_picker_at;

create or replace function public.configure_whatsapp(settings jsonb)
returns jsonb
language plpgsql
security definer -- writes private settings; service_role only
set search_path = ''
as $$
declare
  current private.whatsapp_settings;
  s private.whatsapp_settings;
  unknown text;
begin
  if settings is null or jsonb_typeof(settings) <> 'object' then
    raise exception using errcode = '22023', message = 'settings must be a JSON object', detail = 'invalid_value',
      hint = 'e.g. {"phone_number_id": "1234567890"}';
  end if;
  select * into current from private.whatsapp_settings w where w.id for update;
  select k into unknown from jsonb_object_keys(settings) k
    where k in ('id', 'updated_at') or not (to_jsonb(current) ? k) limit 1;
  if unknown is not null then
    raise exception using errcode = '22023', message = format('unknown setting %L', unknown), detail = 'invalid_value',
      hint = 'settable: ' || (select string_agg(k, ', ' order by k) from jsonb_object_keys(to_jsonb(current) - 'id' - 'updated_at') k);
  end if;
  if settings ? 'default_country' then
    perform private.normalize_phone('0', upper(settings ->> 'default_country'));  -- 22023 when unsupported
    settings := settings || jsonb_build_object('default_country', upper(settings ->> 'default_country'));
  end if;
  s := jsonb_populate_record(current, settings);   -- a value of the wrong type: 22P02
  s.updated_at := now();
  -- Replace the one row (the table's checks validate the new values).
  delete from private.whatsapp_settings w where w.id;
  insert into private.whatsapp_settings select (s).*;
  if s.default_country is distinct from current.default_country then
    update public.tenants t set phone_e164 = private.normalize_phone(t.phone, s.default_country)
    where t.phone is not null and t.phone_e164 is distinct from private.normalize_phone(t.phone, s.default_country);
  end if;
  return to_jsonb(s) - 'id';
end
$$;
