-- Issue 18, step 2: route_inbound_message in fewer statements, same decisions. Measured with
-- plpgsql_check's profiler on the routing hot path (docs/benchmarks.md section 1):
--   * the candidates are counted and both pools (confirmed; not declined) built in one pass, not two;
--   * a single candidate is the chosen row as it is (no second search of the candidates);
--   * a link that is already confirmed is not confirmed again (set_link_state read it once more and
--     took the link row's lock through INSERT .. ON CONFLICT on every message of a known tenant);
--   * the webhook time is computed once.

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
  pool_confirmed jsonb; -- the open candidates with a confirmed link
  pool_open jsonb;      -- the open candidates that have not declined
  v_meta_at timestamptz;
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
  v_meta_at := private.webhook_time(message ->> 'timestamp');
  v_at := coalesce(v_meta_at, now());
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
           count(*) filter (where x.open),
           count(*) filter (where x.open and x.link <> 'declined'),
           count(*) filter (where x.open and x.link = 'confirmed'),
           coalesce(jsonb_agg(x.e) filter (where x.open and x.link = 'confirmed'), '[]'),
           coalesce(jsonb_agg(x.e) filter (where x.open and x.link <> 'declined'), '[]')
      into n_candidates, n_open, n_eligible, n_confirmed, pool_confirmed, pool_open
    from (select e, e ->> 'conversation_status' is distinct from 'blocked' as open, e ->> 'link_state' as link
          from jsonb_array_elements(candidates) e) x;
    pool := case when n_confirmed > 0 then pool_confirmed else pool_open end;

    -- 6. Decide.
    if n_candidates = 0 then
      v_status := 'unknown_sender'; rule := 'no_active_lease_for_phone';
    elsif n_open = 0 then
      v_status := 'blocked'; rule := 'blocked_by_every_candidate';
    elsif n_eligible = 0 then
      v_status := 'unknown_sender'; rule := 'declined_every_open_candidate';
    elsif n_candidates = 1 then
      chosen_row := pool -> 0;
      chosen := (chosen_row ->> 'landlord_id')::uuid;
      rule := 'single_candidate';
      if chosen_row ->> 'link_state' <> 'confirmed' then
        perform private.set_link_state(chosen, v_phone, 'confirmed', 'only_candidate');
      end if;
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
    if chosen_row is null then
      select e into chosen_row from jsonb_array_elements(candidates) e where (e ->> 'landlord_id')::uuid = chosen;
    end if;
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
            'original_timestamp', case when message ->> 'timestamp' is not null and v_meta_at is null
                                        then message ->> 'timestamp' end,
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
