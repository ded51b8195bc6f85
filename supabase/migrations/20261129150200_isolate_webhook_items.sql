-- Why: one bad item must never cost its neighbours, and nothing Meta sends may be lost. A signed
-- batch with one valid message and one whose `from` was "123456" answered 400 and stored neither;
-- a far-future timestamp (999999999999) was accepted, broke /ops ("timestamp too large") and kept
-- that conversation's 24-hour window open.
--   * ingest_whatsapp_webhook() routes every item in its own subtransaction. An item refused for
--     what it is (SQLSTATE classes 22 data and 23 integrity: it will fail the same way on every
--     retry) is kept whole in private.webhook_dead_letters with its error, and the rest is
--     stored; the webhook is answered 200, since a retry can never fix it. Anything else (the
--     database busy, a timeout, a lock) fails the whole call, so that Meta retries.
--   * A body, entry or change that is not the shape Meta documents, or a change for another
--     phone number, is dead-lettered the same way.
--   * private.webhook_time(): Meta's Unix seconds, or null outside [now - 30 days, now + 1 hour];
--     then the receipt time is used and the original kept in the message's details.
--   * The shim hands bodies it cannot parse at all to dead_letter_webhook(); support lists them all
--     with list_dead_letters(); whatsapp_service_status() counts them.

create table private.webhook_dead_letters (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  source text not null check (source in ('body', 'entry', 'change', 'message', 'status', 'error')),
  phone_number_id text,
  error_code text not null,
  error_message text not null,
  item jsonb,
  body text,
  constraint webhook_dead_letters_kept check (item is not null or body is not null)
);
comment on table private.webhook_dead_letters is
  'Webhook items (or whole bodies) that can never be stored as they are, kept whole with the error, for support.';
create index webhook_dead_letters_received_at_idx on private.webhook_dead_letters (received_at);
alter table private.webhook_dead_letters enable row level security;
revoke all on private.webhook_dead_letters from public, anon, authenticated, service_role;

create function private.dead_letter(source text, phone_number_id text, item jsonb, error_code text, error_message text)
returns void
language sql
security invoker
set search_path = ''
as $$
  insert into private.webhook_dead_letters (source, phone_number_id, item, error_code, error_message)
  values (source, phone_number_id, item, error_code, error_message)
$$;
comment on function private.dead_letter(text, text, jsonb, text, text) is 'Keep one unusable webhook item whole, with its error.';

-- An error a retry can never fix: what was sent is wrong (data exception, integrity).
create function private.is_permanent_error(sqlstate text)
returns boolean
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select left(sqlstate, 2) in ('22', '23')
$$;
comment on function private.is_permanent_error(text) is 'SQLSTATE classes 22 and 23: the input is wrong and will be on every retry.';

create function private.webhook_time(unix_seconds text)
returns timestamptz
language sql
stable
security invoker
set search_path = ''
as $$
  select t from (select to_timestamp(unix_seconds::bigint) as t where unix_seconds ~ '^[0-9]{1,12}$') x
  where t between now() - interval '30 days' and now() + interval '1 hour'
$$;
comment on function private.webhook_time(text) is
  'Meta''s Unix-seconds timestamp, or null when missing, malformed or outside [now - 30 days, now + 1 hour].';

create function public.dead_letter_webhook(body text, error text)
returns bigint
language plpgsql
security definer -- writes the private dead-letter table; service_role only
set search_path = ''
as $$
declare
  id bigint;
begin
  if body is null or nullif(btrim(error), '') is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'pass the body and why it cannot be used',
      hint = 'dead_letter_webhook(<raw body>, ''not JSON'')';
  end if;
  insert into private.webhook_dead_letters (source, body, error_code, error_message)
  values ('body', dead_letter_webhook.body, '22023', error)
  returning webhook_dead_letters.id into id;
  return id;
end
$$;
comment on function public.dead_letter_webhook(text, text) is
  'Service role: keep a signed webhook body the shim cannot parse (not JSON, too deep, not an object), with why.';
revoke execute on function public.dead_letter_webhook(text, text) from public, anon, authenticated;
grant execute on function public.dead_letter_webhook(text, text) to service_role;

create function public.list_dead_letters(after_id bigint default null, page_size integer default 50)
returns table (id bigint, received_at timestamptz, source text, phone_number_id text, error_code text, error_message text,
               item jsonb, body text)
language plpgsql
stable
security definer -- reads the private dead-letter table; support only
set search_path = ''
as $$
begin
  perform private.require_support();
  if page_size is null or page_size not between 1 and 200 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'page_size must be between 1 and 200', hint = 'e.g. 50';
  end if;
  return query
  select d.id, d.received_at, d.source, d.phone_number_id, d.error_code, d.error_message, d.item, d.body
  from private.webhook_dead_letters d
  where list_dead_letters.after_id is null or d.id < list_dead_letters.after_id
  order by d.id desc
  limit page_size;
end
$$;
comment on function public.list_dead_letters(bigint, integer) is 'Support: dead-lettered webhook items, newest first (keyset after_id).';
revoke execute on function public.list_dead_letters(bigint, integer) from public, anon, authenticated;
grant execute on function public.list_dead_letters(bigint, integer) to authenticated;

create or replace function public.ingest_whatsapp_webhook(payload jsonb)
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
  item jsonb;
  contact jsonb;
  phone_number_id text;
  err_code integer;
  at timestamptz;
  messages jsonb := '[]'::jsonb;
  statuses jsonb := '[]'::jsonb;
  errors jsonb := '[]'::jsonb;
  skipped int := 0;
  dead int := 0;
  e_state text;
  e_message text;
begin
  if central is null then
    -- A configuration error: configuring the number fixes it, so Meta's retry will succeed.
    raise exception using errcode = '55000', detail = 'not_configured', message = 'the central ZenRent number is not configured',
      hint = 'public.configure_whatsapp(''{"phone_number_id": ...}'') (scripts/run does it from WHATSAPP_PHONE_NUMBER_ID)';
  end if;
  if payload is null or jsonb_typeof(payload) <> 'object' or payload ->> 'object' is distinct from 'whatsapp_business_account'
     or jsonb_typeof(payload -> 'entry') is distinct from 'array' then
    perform private.dead_letter('body', null, coalesce(payload, 'null'::jsonb), '22023',
      'not a WhatsApp Business Account webhook: an object with object = whatsapp_business_account and an entry array');
    return jsonb_build_object('messages', messages, 'statuses', statuses, 'errors', errors, 'skipped_changes', 0, 'dead_letters', 1);
  end if;

  for entry in select e from jsonb_array_elements(payload -> 'entry') e loop
    if jsonb_typeof(entry -> 'changes') is distinct from 'array' then
      perform private.dead_letter('entry', null, entry, '22023', 'webhook entry has no changes array');
      dead := dead + 1;
      continue;
    end if;
    for change in select ch from jsonb_array_elements(entry -> 'changes') ch loop
      if change ->> 'field' is distinct from 'messages' then
        skipped := skipped + 1;
        continue;
      end if;
      value := change -> 'value';
      phone_number_id := value -> 'metadata' ->> 'phone_number_id';
      if jsonb_typeof(value) is distinct from 'object' then
        perform private.dead_letter('change', null, change, '22023', 'messages change without a value object');
        dead := dead + 1;
        continue;
      end if;
      if phone_number_id is distinct from central then
        perform private.dead_letter('change', phone_number_id, change, '22023',
          format('webhook for phone number id %s, not the central ZenRent number', coalesce(phone_number_id, '(none)')));
        dead := dead + 1;
        continue;
      end if;

      for item in select m from jsonb_array_elements(
          case when jsonb_typeof(value -> 'messages') = 'array' then value -> 'messages' else '[]' end) m loop
        begin
          select c into contact from jsonb_array_elements(
              case when jsonb_typeof(value -> 'contacts') = 'array' then value -> 'contacts' else '[]' end) c
            where c ->> 'wa_id' = item ->> 'from' limit 1;
          messages := messages || public.route_inbound_message(item, contact, value -> 'metadata');
        exception when others then
          get stacked diagnostics e_state = returned_sqlstate, e_message = message_text;
          if not private.is_permanent_error(e_state) then
            raise;
          end if;
          perform private.dead_letter('message', phone_number_id, item, e_state, e_message);
          dead := dead + 1;
        end;
      end loop;

      for item in select s from jsonb_array_elements(
          case when jsonb_typeof(value -> 'statuses') = 'array' then value -> 'statuses' else '[]' end) s loop
        begin
          if item ->> 'timestamp' is null or item ->> 'timestamp' !~ '^[0-9]{1,12}$' then
            raise exception using errcode = '22023', detail = 'invalid_value',
              message = format('status for %s has no valid timestamp', item ->> 'id'), hint = 'timestamp is Unix seconds';
          end if;
          at := coalesce(private.webhook_time(item ->> 'timestamp'), now());
          perform private.attach_wamid_from_callback(item ->> 'biz_opaque_callback_data', item ->> 'id');
          statuses := statuses || public.record_message_status(item ->> 'id', item ->> 'status', at, item -> 'errors');
        exception when others then
          get stacked diagnostics e_state = returned_sqlstate, e_message = message_text;
          if not private.is_permanent_error(e_state) then
            raise;
          end if;
          perform private.dead_letter('status', phone_number_id, item, e_state, e_message);
          dead := dead + 1;
        end;
      end loop;

      for item in select e from jsonb_array_elements(
          case when jsonb_typeof(value -> 'errors') = 'array' then value -> 'errors' else '[]' end) e loop
        begin
          err_code := case when item ->> 'code' ~ '^-?[0-9]{1,9}$' then (item ->> 'code')::integer end;
          insert into private.webhook_errors (phone_number_id, code, title, details)
          values (phone_number_id, err_code, item ->> 'title', item)
          on conflict on constraint webhook_errors_once_a_day do nothing;
          errors := errors || jsonb_build_object('code', err_code, 'title', item ->> 'title');
        exception when others then
          get stacked diagnostics e_state = returned_sqlstate, e_message = message_text;
          if not private.is_permanent_error(e_state) then
            raise;
          end if;
          perform private.dead_letter('error', phone_number_id, item, e_state, e_message);
          dead := dead + 1;
        end;
      end loop;
    end loop;
  end loop;

  return jsonb_build_object('messages', messages, 'statuses', statuses, 'errors', errors, 'skipped_changes', skipped,
                            'dead_letters', dead);
end
$$;
comment on function public.ingest_whatsapp_webhook(jsonb) is
  'Service role: store one Cloud API webhook body (all messages, statuses, errors). Items that can never be stored are '
  'dead-lettered (private.webhook_dead_letters) and counted, never refused with their neighbours; 55000 when the central '
  'number is not configured. Returns a per-item summary.';

create or replace function public.route_inbound_message(message jsonb, contact jsonb default null, metadata jsonb default null)
returns jsonb
language plpgsql
security definer -- webhook-facing: reads the private routing table and files messages for any landlord; service_role only
set search_path = ''
as $$
declare
  v_wamid text;
  v_from text;
  v_phone text;
  v_at timestamptz;
  c record;
  existing public.whatsapp_messages;
  inserted public.whatsapp_messages;
  candidates jsonb;
  pool jsonb;          -- who may receive: the confirmed candidates if any, else every open one
  n_candidates int;
  n_open int;
  n_eligible int;
  n_confirmed int;
  chosen uuid;
  chosen_row jsonb;
  rule text;
  v_status text;
  v_conversation uuid;
  consent text;
  keyword text;
  choice_token text;
  pin private.routing_pins;
  prefs private.phone_preferences;
  cfg private.whatsapp_settings;
begin
  -- 1. Shape.
  if message is null or jsonb_typeof(message) <> 'object' then
    raise exception using errcode = '22023', message = 'message must be a JSON object', detail = 'invalid_value',
      hint = 'pass one element of the webhook''s value.messages[] array';
  end if;
  v_wamid := nullif(btrim(message ->> 'id'), '');
  if v_wamid is null then
    raise exception using errcode = '22023', message = 'message has no id (wamid)', detail = 'invalid_value',
      hint = 'pass one element of the webhook''s value.messages[] array';
  end if;
  v_from := message ->> 'from';
  if v_from is null or v_from !~ '^[0-9]{6,15}$' then
    raise exception using errcode = '22023', message = format('message %s has no valid from', v_wamid), detail = 'invalid_value',
      hint = 'from is the sender''s phone in international digits, as WhatsApp sends it';
  end if;
  if message ->> 'type' is null then
    raise exception using errcode = '22023', message = format('message %s has no type', v_wamid), detail = 'invalid_value',
      hint = 'Cloud API messages always carry a type';
  end if;
  if message ->> 'timestamp' is not null and message ->> 'timestamp' !~ '^[0-9]{1,12}$' then
    raise exception using errcode = '22023', message = format('message %s has an invalid timestamp', v_wamid), detail = 'invalid_value',
      hint = 'timestamp is Unix seconds';
  end if;
  -- Meta's time, unless it is implausible (then the receipt time; the original is kept).
  v_at := coalesce(private.webhook_time(message ->> 'timestamp'), now());
  select * into c from private.parse_message_content(message);

  -- 2. Exactly once.
  perform pg_advisory_xact_lock(hashtextextended('whatsapp_messages.wamid:' || v_wamid, 0));
  select * into existing from public.whatsapp_messages m where m.wamid = v_wamid;
  if found then
    return private.route_result(existing, true);
  end if;

  select * into cfg from private.whatsapp_settings;
  v_phone := private.normalize_phone('+' || v_from, cfg.default_country);
  if v_phone is null then
    raise exception using errcode = '22023', message = format('message %s: from %s is not a phone number', v_wamid, v_from), detail = 'invalid_value',
      hint = 'from is the sender''s phone in international digits';
  end if;

  -- 3. Consent keywords.
  if c.type = 'text' then
    keyword := upper(btrim(c.body));
    if keyword in ('STOP', 'UNSUBSCRIBE') then
      insert into private.phone_preferences as p (phone, opted_out, opted_out_at)
      values (v_phone, true, now())
      on conflict on constraint phone_preferences_pkey do update set opted_out = true, opted_out_at = now(), updated_at = now()
        where not p.opted_out
      returning * into prefs;
      consent := 'opted_out';
      if prefs.phone is not null then
        perform private.queue_system_reply(v_phone, cfg.opt_out_ack_text, 'opt_out_ack');
      end if;
    elsif keyword = 'START' then
      update private.phone_preferences p set opted_out = false, opted_in_at = now(), updated_at = now()
        where p.phone = v_phone and p.opted_out
      returning * into prefs;
      consent := 'opted_in';
      if prefs.phone is not null then
        perform private.queue_system_reply(v_phone, cfg.opt_in_ack_text, 'opt_in_ack');
      end if;
    end if;
  end if;

  -- 4. A tap on one of ZenRent's options is the tenant's answer to ZenRent, for no landlord.
  if c.type in ('interactive', 'button') then
    choice_token := coalesce(message -> 'interactive' -> 'button_reply' ->> 'id',
                             message -> 'interactive' -> 'list_reply' ->> 'id', message -> 'button' ->> 'payload');
    if choice_token ~ '^zr[0-9a-f]{32}$' then
      v_status := 'system';
      rule := private.answer_choice(v_phone, choice_token, v_wamid);
    end if;
  end if;

  -- 5. Candidates, and who of them may receive.
  if v_status is null then
    candidates := private.routing_candidates(v_phone);
    select count(*),
           count(*) filter (where e ->> 'conversation_status' is distinct from 'blocked'),
           count(*) filter (where e ->> 'conversation_status' is distinct from 'blocked' and e ->> 'link_state' <> 'declined'),
           count(*) filter (where e ->> 'conversation_status' is distinct from 'blocked' and e ->> 'link_state' = 'confirmed')
      into n_candidates, n_open, n_eligible, n_confirmed
    from jsonb_array_elements(candidates) e;
    select coalesce(jsonb_agg(e), '[]') into pool from jsonb_array_elements(candidates) e
    where e ->> 'conversation_status' is distinct from 'blocked'
      and (e ->> 'link_state' = 'confirmed' or (n_confirmed = 0 and e ->> 'link_state' <> 'declined'));

    -- 6. Decide.
    if n_candidates = 0 then
      v_status := 'unknown_sender'; rule := 'no_active_lease_for_phone';
    elsif n_open = 0 then
      v_status := 'blocked'; rule := 'blocked_by_every_candidate';
    elsif n_eligible = 0 then
      v_status := 'unknown_sender'; rule := 'declined_every_open_candidate';
    elsif n_candidates = 1 then
      chosen := (pool -> 0 ->> 'landlord_id')::uuid;
      rule := 'single_candidate';
      perform private.set_link_state(chosen, v_phone, 'confirmed', 'only_candidate');
    else
      -- Several landlords: only what the tenant did (or support) chooses, and only within the pool.
      if c.reply_to_wamid is not null then
        select m.landlord_id into chosen from public.whatsapp_messages m
          join jsonb_array_elements(pool) e on (e ->> 'landlord_id')::uuid = m.landlord_id
          where m.wamid = c.reply_to_wamid and m.direction = 'outgoing' and m.tenant_phone = v_phone;
        if chosen is not null then rule := 'reply_context'; end if;
      end if;
      if chosen is null then
        select p.* into pin from private.routing_pins p
          join jsonb_array_elements(pool) e on (e ->> 'landlord_id')::uuid = p.landlord_id
          where p.phone = v_phone and p.expires_at > now();
        if pin.phone is not null then
          chosen := pin.landlord_id;
          rule := case when pin.source = 'tenant' then 'tenant_pick' else 'support_pin' end;
        end if;
      end if;
      if chosen is null and n_confirmed = 1 then
        chosen := (pool -> 0 ->> 'landlord_id')::uuid;
        rule := 'only_confirmed_candidate';
      end if;
      if chosen is null then
        v_status := 'ambiguous'; rule := case when n_confirmed > 1 then 'several_confirmed_landlords' else 'several_landlords' end;
      end if;
    end if;
  end if;

  if chosen is not null then
    select e into chosen_row from jsonb_array_elements(candidates) e where (e ->> 'landlord_id')::uuid = chosen;
    if not (chosen_row ->> 'enabled')::boolean then
      v_status := 'landlord_disabled';
      rule := rule || ':landlord_not_opted_in';
      chosen := null;
      chosen_row := null;   -- held: no landlord, tenant or property on the row; candidates stay in the details
    else
      v_status := 'delivered';
      -- Usually the conversation exists with the same tenant and property: then the counter
      -- trigger's update is the only write to it (one row version per message, not two).
      select cv.id into v_conversation from public.whatsapp_conversations cv
        where cv.landlord_id = chosen and cv.tenant_phone = v_phone
          and cv.tenant_id is not distinct from (chosen_row ->> 'tenant_id')::uuid
          and cv.property_id is not distinct from (chosen_row ->> 'property_id')::uuid;
      if v_conversation is null then
        insert into public.whatsapp_conversations as cv (landlord_id, tenant_id, tenant_phone, property_id)
        values (chosen, (chosen_row ->> 'tenant_id')::uuid, v_phone, (chosen_row ->> 'property_id')::uuid)
        on conflict (landlord_id, tenant_phone) do update
          set tenant_id = excluded.tenant_id, property_id = excluded.property_id
        returning cv.id into v_conversation;
      end if;
    end if;
  end if;

  -- 7. Store (the conversation trigger bumps unread_count, last_message_at, preview).
  insert into public.whatsapp_messages (
    wamid, direction, is_from_tenant, type, body, media_id, media_mime_type, media_sha256, media_caption,
    media_filename, reply_to_wamid, reply_to_message_id, from_phone, to_phone, tenant_phone, contact_name,
    landlord_id, tenant_id, property_id, conversation_id, routing_status, status, sent_at)
  values (
    v_wamid, 'incoming', true, c.type, c.body, c.media_id, c.media_mime_type, c.media_sha256, c.media_caption,
    c.media_filename, c.reply_to_wamid,
    (select m.id from public.whatsapp_messages m where m.wamid = c.reply_to_wamid and m.landlord_id = chosen),
    v_from, coalesce(metadata ->> 'display_phone_number', cfg.display_phone_number), v_phone,
    contact -> 'profile' ->> 'name',
    chosen, (chosen_row ->> 'tenant_id')::uuid, (chosen_row ->> 'property_id')::uuid, v_conversation, v_status,
    'received', v_at)
  returning * into inserted;
  insert into private.whatsapp_message_details (message_id, routing_metadata, raw)
  values (inserted.id, jsonb_strip_nulls(jsonb_build_object(
            'rule', rule, 'candidates', candidates, 'consent', consent,
            'original_type', case when c.type <> message ->> 'type' then message ->> 'type' end,
            'original_timestamp', case when message ->> 'timestamp' is not null
                                        and private.webhook_time(message ->> 'timestamp') is null then message ->> 'timestamp' end,
            'phone_number_id', metadata ->> 'phone_number_id')),
          message);

  -- 8. ZenRent's own replies: a courtesy reply at most once a day; the picker for an ambiguous message.
  if v_status = 'unknown_sender' and consent is null then
    insert into private.phone_preferences as p (phone, last_courtesy_reply_at) values (v_phone, now())
    on conflict on constraint phone_preferences_pkey do update set last_courtesy_reply_at = now(), updated_at = now()
      where p.last_courtesy_reply_at is null or p.last_courtesy_reply_at < now() - interval '1 day'
    returning * into prefs;
    if prefs.phone is not null and not prefs.opted_out then
      perform private.queue_system_reply(v_phone, cfg.courtesy_reply_text, 'courtesy');
    end if;
  elsif v_status = 'ambiguous' and consent is null then
    perform private.offer_picker(v_phone,
      (select jsonb_agg(e order by e ->> 'landlord_name', e ->> 'property_address', e ->> 'landlord_id') from jsonb_array_elements(pool) e),
      v_wamid);
  end if;

  return private.route_result(inserted, false);
end
$$;

create or replace function public.whatsapp_service_status()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  perform private.require_support_or_service_role();
  return jsonb_build_object(
    'inbound_last_24h', (select coalesce(jsonb_object_agg(s.routing_status, s.n), '{}') from (
        select m.routing_status, count(*) as n from public.whatsapp_messages m
        where m.direction = 'incoming' and m.user_id is null and m.created_at > now() - interval '24 hours'
        group by m.routing_status) s),
    'held', (select count(*) from public.whatsapp_messages m where m.is_held),
    'outbound_queued', (select count(*) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_sending', (select count(*) from public.whatsapp_messages m where m.status = 'sending'),
    'outbound_needs_review', (select count(*) from public.whatsapp_messages m where m.status = 'needs_review'),
    'oldest_queued_at', (select min(m.created_at) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_failed_last_24h', (select coalesce(jsonb_object_agg(coalesce(f.error_code::text, 'none'), f.n), '{}') from (
        select m.error_code, count(*) as n from public.whatsapp_messages m
        where m.status = 'failed' and m.failed_at > now() - interval '24 hours' group by m.error_code) f),
    'webhook_errors_last_24h', (select count(*) from private.webhook_errors e where e.received_at > now() - interval '24 hours'),
    'dead_letters_last_24h', (select count(*) from private.webhook_dead_letters d where d.received_at > now() - interval '24 hours'),
    'pending_statuses', (select count(*) from private.pending_message_statuses),
    'active_pins', (select count(*) from private.routing_pins p where p.expires_at > now()),
    'declined_links', (select count(*) from public.whatsapp_tenant_links l where l.state = 'declined'),
    'at', now());
end
$$;
