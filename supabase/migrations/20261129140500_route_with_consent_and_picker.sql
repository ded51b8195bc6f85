-- Why: among several landlords claiming one phone, routing now uses only facts the tenant
-- created. The old "recent outbound in the last 24 h" rule is gone: a landlord could buy it by
-- writing to someone else's tenant every day. In order:
--   * a tap on one of ZenRent's options (consent Yes / No / Report, a picker row) is the
--     tenant's answer, handled here and never filed with a landlord; an unknown, expired or
--     foreign option gets a polite re-ask, never an error to Meta;
--   * candidates = landlords with an active lease for the phone; those who blocked the phone and
--     those the tenant declined are out;
--   * one candidate in all -> that landlord, and the link is confirmed (the tenant wrote while
--     this landlord was the phone's only candidate);
--   * several -> among the confirmed ones if any exist (an unconfirmed candidate never receives
--     a message while a confirmed one exists), else among the rest: the landlord whose message
--     the tenant replies to (context.id), else the tenant's own pick (a tenant pin), else a
--     support pin, else the one confirmed candidate, else ambiguous;
--   * an ambiguous message is held and the tenant gets the picker (at most once a day); the
--     pick files that phone's ambiguous messages of the last choice_ttl_days, in order, with
--     the chosen landlord, confirms the link, pins the phone to them and is acknowledged;
--   * every answer and pick is in the audit log.

alter table private.routing_pins
  add column source text not null default 'support' check (source in ('support', 'tenant'));
comment on column private.routing_pins.source is 'support (assign_held_message) or tenant (the tenant''s pick in the picker).';

alter table private.phone_preferences add column last_choice_expired_at timestamptz;

-- The recent-outbound rule read outbound messages by phone; nothing does now. What is read by
-- phone instead is the tenant's own last message (Meta's 24-hour window for ZenRent's messages).
drop index public.whatsapp_messages_outbound_phone_idx;
create index whatsapp_messages_inbound_phone_idx on public.whatsapp_messages (tenant_phone, sent_at desc)
  where direction = 'incoming';

-- Meta's customer service window for ZenRent's own messages: the phone wrote to the central
-- number in the last 24 hours (to any landlord, or held). Landlords' free text is held to the
-- stricter per-conversation window (private.service_window_open).
create function private.phone_window_open(phone text)
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select exists (select 1 from public.whatsapp_messages m
                 where m.tenant_phone = phone_window_open.phone and m.direction = 'incoming' and m.user_id is null
                   and m.sent_at > now() - interval '24 hours')
$$;
comment on function private.phone_window_open(text) is 'The phone wrote to the central number in the last 24 hours.';

-- File a held message with a landlord, exactly as the router would: the landlord's newest
-- tenancy for the phone, their conversation (created if needed), the reply link only to their
-- own message. Counters and notifications follow through the triggers. Returns the conversation.
create function private.file_held_message(message_id uuid, landlord_id uuid, why jsonb)
returns uuid
language plpgsql
security invoker
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
  route private.tenant_landlord_routing;
  conversation uuid;
begin
  select * into m from public.whatsapp_messages x where x.id = file_held_message.message_id for update;
  select * into route from private.tenant_landlord_routing r
    where r.tenant_phone = m.tenant_phone and r.landlord_id = file_held_message.landlord_id
    order by r.lease_start_date desc, r.lease_id limit 1;
  insert into public.whatsapp_conversations as cv (landlord_id, tenant_id, tenant_phone, property_id)
  values (file_held_message.landlord_id, route.tenant_id, m.tenant_phone, route.property_id)
  on conflict on constraint whatsapp_conversations_landlord_phone_key do update
    set tenant_id = coalesce(excluded.tenant_id, cv.tenant_id), property_id = coalesce(excluded.property_id, cv.property_id)
  returning cv.id into conversation;
  update public.whatsapp_messages x set
    landlord_id = file_held_message.landlord_id, tenant_id = route.tenant_id, property_id = route.property_id,
    conversation_id = conversation, routing_status = 'delivered',
    reply_to_message_id = (select r.id from public.whatsapp_messages r
                            where r.wamid = m.reply_to_wamid and r.landlord_id = file_held_message.landlord_id)
  where x.id = m.id;
  perform private.add_routing_metadata(m.id, why || jsonb_build_object('held_as', m.routing_status));
  return conversation;
end
$$;
comment on function private.file_held_message(uuid, uuid, jsonb) is
  'Deliver a held message to a landlord as the router would (their conversation, newest tenancy, own reply links). Returns the conversation.';

-- The phone's candidates: one per landlord with an active lease (newest tenancy), with their
-- opt-in, link state and conversation status.
create function private.routing_candidates(phone text)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(x order by x.landlord_id), '[]')
  from (
    select distinct on (r.landlord_id)
           r.landlord_id, r.landlord_name, r.landlord_whatsapp_enabled as enabled,
           r.tenant_id, r.tenant_name, r.property_id, r.property_address,
           private.link_state(r.landlord_id, phone) as link_state,
           (select cv.status from public.whatsapp_conversations cv
             where cv.landlord_id = r.landlord_id and cv.tenant_phone = routing_candidates.phone) as conversation_status
    from private.tenant_landlord_routing r
    where r.tenant_phone = routing_candidates.phone
    order by r.landlord_id, r.lease_start_date desc, r.lease_id
  ) x
$$;
comment on function private.routing_candidates(text) is
  'Candidate landlords of a phone: landlord, name, opt-in, newest tenancy, link state, conversation status.';

-- The picker for a phone, at most once a day, in reply to the tenant's message.
create function private.offer_picker(phone text, options jsonb, reply_to_wamid text)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  prefs private.phone_preferences;
begin
  insert into private.phone_preferences as p (phone, last_picker_at) values (offer_picker.phone, now())
  on conflict on constraint phone_preferences_pkey do update set last_picker_at = now(), updated_at = now()
    where p.last_picker_at is null or p.last_picker_at < now() - interval '1 day'
  returning * into prefs;
  if prefs.phone is null or prefs.opted_out then
    return false;
  end if;
  perform private.queue_zenrent_message(phone, 'picker', '[picker]',
    interactive => private.picker_interactive(phone, options), reply_to_wamid => offer_picker.reply_to_wamid);
  return true;
end
$$;
comment on function private.offer_picker(text, jsonb, text) is 'Queue the picker for this phone unless one went out in the last day.';

-- The tenant tapped one of ZenRent's options. Returns the rule recorded on the tap message.
create function private.answer_choice(phone text, token text, wamid text)
returns text
language plpgsql
security invoker
set search_path = ''
as $$
declare
  cfg private.whatsapp_settings;
  ch private.tenant_choices;
  cand jsonb;
  candidates jsonb := private.routing_candidates(phone);
  prefs private.phone_preferences;
  held record;
  n_filed integer := 0;
  landlord_name text;
begin
  select * into cfg from private.whatsapp_settings;
  select * into ch from private.tenant_choices c where c.token = answer_choice.token and c.phone = answer_choice.phone for update;
  if ch.token is not null and ch.used_at is not null and ch.kind <> 'pick_none' then
    return 'choice_repeated';      -- a second tap on an answered option changes nothing
  end if;
  if ch.landlord_id is not null then
    select c into cand from jsonb_array_elements(candidates) c where (c ->> 'landlord_id')::uuid = ch.landlord_id;
  end if;
  -- Unknown, another phone's, expired, or a pick that can no longer be honoured (the lease
  -- ended, the landlord blocked the phone or turned WhatsApp off): ask again, politely.
  if ch.token is null or ch.expires_at <= now()
     or (ch.kind = 'pick' and (cand is null or cand ->> 'conversation_status' = 'blocked' or not (cand ->> 'enabled')::boolean)) then
    insert into private.phone_preferences as p (phone, last_choice_expired_at) values (answer_choice.phone, now())
    on conflict on constraint phone_preferences_pkey do update set last_choice_expired_at = now(), updated_at = now()
      where p.last_choice_expired_at is null or p.last_choice_expired_at < now() - interval '1 hour'
    returning * into prefs;
    if prefs.phone is not null and not prefs.opted_out then
      perform private.queue_zenrent_message(phone, 'choice_expired', cfg.choice_expired_text, reply_to_wamid => wamid);
    end if;
    return 'choice_expired';
  end if;

  update private.tenant_choices c set used_at = now() where c.token = ch.token;
  select up.full_name into landlord_name from public.user_profiles up where up.id = ch.landlord_id;

  if ch.kind in ('consent_yes', 'consent_no', 'consent_report') then
    perform private.set_link_state(ch.landlord_id, phone,
      case when ch.kind = 'consent_yes' then 'confirmed' else 'declined' end,
      case ch.kind when 'consent_yes' then 'consent_yes' when 'consent_no' then 'consent_no' else 'report' end);
    perform private.queue_zenrent_message(phone, ch.kind || '_ack', private.fill_text(
      case ch.kind when 'consent_yes' then cfg.consent_yes_ack_text when 'consent_no' then cfg.consent_no_ack_text
                   else cfg.consent_report_ack_text end, landlord_name, cand ->> 'property_address'));
    insert into private.support_audit_log (actor_kind, phone, action, landlord_id, details)
    values ('tenant', phone, ch.kind, ch.landlord_id, jsonb_build_object('label', ch.label, 'wamid', wamid));
    return ch.kind;
  end if;

  if ch.kind = 'pick_none' then
    perform private.queue_zenrent_message(phone, 'picker_ack', cfg.picker_none_ack_text);
    insert into private.support_audit_log (actor_kind, phone, action, details)
    values ('tenant', phone, 'pick_none', jsonb_build_object('label', ch.label, 'wamid', wamid));
    return 'pick_none';
  end if;

  -- A pick: confirm, pin, and file the phone's recent ambiguous messages, oldest first.
  perform private.set_link_state(ch.landlord_id, phone, 'confirmed', 'picker');
  insert into private.routing_pins as p (phone, landlord_id, expires_at, created_by, reason, source)
  values (phone, ch.landlord_id, now() + make_interval(days => cfg.tenant_pin_days), null, 'picked by the tenant', 'tenant')
  on conflict on constraint routing_pins_pkey do update set landlord_id = excluded.landlord_id, expires_at = excluded.expires_at,
    created_by = null, reason = excluded.reason, source = 'tenant', created_at = now();
  for held in
    select m.id from public.whatsapp_messages m
    where m.tenant_phone = answer_choice.phone and m.is_held and m.routing_status = 'ambiguous'
      and m.sent_at > now() - make_interval(days => cfg.choice_ttl_days)
    order by m.sent_at, m.id
  loop
    perform private.file_held_message(held.id, ch.landlord_id, jsonb_build_object('picked_by_tenant', wamid, 'picked_at', now()));
    n_filed := n_filed + 1;
  end loop;
  insert into private.support_audit_log (actor_kind, phone, action, landlord_id, details)
  values ('tenant', phone, 'pick', ch.landlord_id,
          jsonb_build_object('label', ch.label, 'wamid', wamid, 'messages_filed', n_filed, 'pinned_days', cfg.tenant_pin_days));
  perform private.queue_zenrent_message(phone, 'picker_ack',
    private.fill_text(cfg.picker_ack_text, landlord_name, cand ->> 'property_address'));
  return 'pick';
end
$$;
comment on function private.answer_choice(text, text, text) is
  'Apply a tenant''s tap on a ZenRent option (consent answer, pick); expired or unknown options get a polite re-ask.';

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
  v_at := coalesce(to_timestamp((message ->> 'timestamp')::bigint), now());
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
