-- Why: the webhook shim makes exactly one database call per delivery, in one transaction, so a
-- webhook is either wholly stored or not at all (and then Meta retries). This walks the whole
-- body: every entry, every change, every message (not only the first), every status, every
-- error. A delivery for another phone number than the central one is refused whole.

-- Meta's errors carry no id or time, so a redelivered webhook repeats them word for word: the
-- same error for the same number is recorded once a day (UTC), the first time it is heard.
create table private.webhook_errors (
  id bigint generated always as identity primary key,
  phone_number_id text,
  code integer,
  title text,
  details jsonb not null,
  details_md5 text not null generated always as (md5(details::text)) stored,
  received_at timestamptz not null default now(),
  received_on date not null default (now() at time zone 'utc')::date,
  constraint webhook_errors_once_a_day unique nulls not distinct (phone_number_id, details_md5, received_on)
);
comment on table private.webhook_errors is
  'value.errors[] reported by Meta in webhooks (for operators); one row per number, error and UTC day.';
create index webhook_errors_received_at_idx on private.webhook_errors (received_at);
alter table private.webhook_errors enable row level security;
revoke all on private.webhook_errors from public, anon, authenticated, service_role;

-- A status can name our message in biz_opaque_callback_data before the sender recorded the
-- wamid (e.g. it crashed after Meta accepted the message): attach the wamid then.
create function private.attach_wamid_from_callback(callback_data text, wamid text)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  target uuid;
begin
  if callback_data is null or callback_data !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return false;
  end if;
  update public.whatsapp_messages m
    set wamid = attach_wamid_from_callback.wamid,
        status = case when m.status in ('queued', 'sending', 'needs_review') then 'sent' else m.status end
  where m.id = callback_data::uuid and m.direction = 'outgoing' and m.wamid is null
    and not exists (select 1 from public.whatsapp_messages o where o.wamid = attach_wamid_from_callback.wamid)
  returning m.id into target;
  if target is not null then
    perform private.add_routing_metadata(target, jsonb_build_object('wamid_from', 'status_callback'));
    perform private.apply_pending_statuses(wamid);
  end if;
  return target is not null;
end
$$;

comment on function private.attach_wamid_from_callback(text, text) is
  'Give an outbound message that has no wamid yet the wamid a status names it by (biz_opaque_callback_data = message id).';

create function public.ingest_whatsapp_webhook(payload jsonb)
returns jsonb
language plpgsql
security definer -- webhook-facing: routes messages and statuses for every landlord; service_role only
set search_path = ''
as $$
declare
  central text := (select s.phone_number_id from private.whatsapp_settings s);
  entry jsonb;
  change jsonb;
  value jsonb;
  msg jsonb;
  st jsonb;
  err jsonb;
  contact jsonb;
  phone_number_id text;
  err_code integer;
  messages jsonb := '[]'::jsonb;
  statuses jsonb := '[]'::jsonb;
  errors jsonb := '[]'::jsonb;
  skipped int := 0;
begin
  if payload is null or jsonb_typeof(payload) <> 'object' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'webhook payload must be a JSON object',
      hint = 'pass the whole POST body Meta sent';
  end if;
  if payload ->> 'object' is distinct from 'whatsapp_business_account' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('not a WhatsApp Business Account webhook (object %L)', payload ->> 'object'),
      hint = 'object must be whatsapp_business_account';
  end if;
  if jsonb_typeof(payload -> 'entry') is distinct from 'array' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'webhook payload has no entry array', hint = 'entry[] -> changes[] -> value';
  end if;

  for entry in select e from jsonb_array_elements(payload -> 'entry') e loop
    if jsonb_typeof(entry -> 'changes') is distinct from 'array' then
      raise exception using errcode = '22023', detail = 'invalid_value', message = 'webhook entry has no changes array', hint = 'entry[] -> changes[] -> value';
    end if;
    for change in select ch from jsonb_array_elements(entry -> 'changes') ch loop
      if change ->> 'field' is distinct from 'messages' then
        skipped := skipped + 1;
        continue;
      end if;
      value := change -> 'value';
      if value is null or jsonb_typeof(value) <> 'object' then
        raise exception using errcode = '22023', detail = 'invalid_value', message = 'messages change without a value object', hint = 'changes[].value';
      end if;
      phone_number_id := value -> 'metadata' ->> 'phone_number_id';
      if central is null then
        raise exception using errcode = '55000', detail = 'not_configured', message = 'the central ZenRent number is not configured',
          hint = 'public.configure_whatsapp(''{"phone_number_id": ...}'') (scripts/run does it from WHATSAPP_PHONE_NUMBER_ID)';
      end if;
      if phone_number_id is distinct from central then
        raise exception using errcode = '22023', detail = 'invalid_value',
          message = format('webhook for phone number id %L, not the central ZenRent number', phone_number_id),
          hint = 'check the app''s webhook subscription, or public.configure_whatsapp(''{"phone_number_id": ...}'')';
      end if;

      for msg in select m from jsonb_array_elements(coalesce(value -> 'messages', '[]')) m loop
        select c into contact from jsonb_array_elements(coalesce(value -> 'contacts', '[]')) c
          where c ->> 'wa_id' = msg ->> 'from' limit 1;
        messages := messages || public.route_inbound_message(msg, contact, value -> 'metadata');
      end loop;

      for st in select s from jsonb_array_elements(coalesce(value -> 'statuses', '[]')) s loop
        if st ->> 'timestamp' is null or st ->> 'timestamp' !~ '^[0-9]{1,12}$' then
          raise exception using errcode = '22023', detail = 'invalid_value', message = format('status for %s has no valid timestamp', st ->> 'id'),
            hint = 'timestamp is Unix seconds';
        end if;
        perform private.attach_wamid_from_callback(st ->> 'biz_opaque_callback_data', st ->> 'id');
        statuses := statuses || public.record_message_status(
          st ->> 'id', st ->> 'status', to_timestamp((st ->> 'timestamp')::bigint), st -> 'errors');
      end loop;

      for err in select e from jsonb_array_elements(coalesce(value -> 'errors', '[]')) e loop
        err_code := case when err ->> 'code' ~ '^-?[0-9]{1,9}$' then (err ->> 'code')::integer end;
        insert into private.webhook_errors (phone_number_id, code, title, details)
        values (phone_number_id, err_code, err ->> 'title', err)
        on conflict on constraint webhook_errors_once_a_day do nothing;
        errors := errors || jsonb_build_object('code', err_code, 'title', err ->> 'title');
      end loop;
    end loop;
  end loop;

  return jsonb_build_object('messages', messages, 'statuses', statuses, 'errors', errors, 'skipped_changes', skipped);
end
$$;
comment on function public.ingest_whatsapp_webhook(jsonb) is
  'Service role: store one whole Cloud API webhook body (all messages, statuses, errors) in one transaction. '
  'Refuses (22023) malformed bodies and other phone numbers. Returns a per-item summary.';
revoke execute on function public.ingest_whatsapp_webhook(jsonb) from public, anon, authenticated;
grant execute on function public.ingest_whatsapp_webhook(jsonb) to service_role;
