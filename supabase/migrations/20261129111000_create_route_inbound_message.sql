-- Why: the heart of the central number. Every inbound message lands in exactly the right
-- landlord's conversation, exactly once, or is held visibly (stored, visible to no landlord,
-- the decision recorded in routing_metadata) — never lost, never leaked.
--
-- Rules, in order:
--   * idempotent on wamid (Meta redelivers for days): a transaction-scoped advisory lock on the
--     wamid serialises racing deliveries; the second sees the first's row and returns it with
--     duplicate = true, changing nothing;
--   * candidates = landlords with an active lease for the sender's phone
--     (private.tenant_landlord_routing);
--   * none -> unknown_sender (courtesy reply at most once per phone per day);
--   * one -> that landlord; several -> among those who have not blocked the phone: the landlord
--     whose outbound message the tenant replies to (context.id), else a support pin
--     (private.routing_pins), else the one landlord with an outbound message to this phone in
--     the last 24 h in a conversation the tenant has already written in, else ambiguous
--     (clarification reply at most once per phone per day). A landlord who merely added someone
--     else's tenant's phone therefore never captures that tenant's messages, not even when the
--     real landlord has blocked the tenant;
--   * a reply's reply_to_message_id only ever points at the chosen landlord's own message;
--   * race-safety relies on READ COMMITTED (the default and what PostgREST uses);
--   * the chosen landlord not opted in -> landlord_disabled; every candidate blocked -> blocked;
--   * STOP / UNSUBSCRIBE and START change the phone's consent, acknowledged once per change;
--   * the decision and Meta's raw element go to private.whatsapp_message_details.

-- What a message says, by type: text body, media, reply context, preview.
create function private.parse_message_content(message jsonb)
returns table (type text, body text, media_id text, media_mime_type text, media_sha256 text,
               media_caption text, media_filename text, reply_to_wamid text)
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  t text := message ->> 'type';
  m jsonb;
begin
  type := t;
  reply_to_wamid := message -> 'context' ->> 'id';
  case t
    when 'text' then
      body := message -> 'text' ->> 'body';
      if body is null then
        raise exception using errcode = '22023', message = 'text message without text.body', detail = 'invalid_value',
          hint = format('message %s', message ->> 'id');
      end if;
    when 'image', 'audio', 'video', 'document', 'sticker' then
      m := message -> t;
      if m is null or m ->> 'id' is null then
        raise exception using errcode = '22023', message = format('%s message without %s.id', t, t), detail = 'invalid_value',
          hint = 'media messages carry the media id to download';
      end if;
      media_id := m ->> 'id';
      media_mime_type := m ->> 'mime_type';
      media_sha256 := m ->> 'sha256';
      media_caption := m ->> 'caption';
      media_filename := m ->> 'filename';
    when 'location' then
      m := message -> 'location';
      body := coalesce(nullif(concat_ws(', ', m ->> 'name', m ->> 'address'), ''),
                       format('%s, %s', m ->> 'latitude', m ->> 'longitude'));
    when 'contacts' then
      select string_agg(coalesce(c -> 'name' ->> 'formatted_name', c -> 'name' ->> 'first_name'), ', ')
        into body from jsonb_array_elements(coalesce(message -> 'contacts', '[]')) c;
    when 'interactive' then
      m := message -> 'interactive';
      body := coalesce(m -> 'button_reply' ->> 'title', m -> 'list_reply' ->> 'title', m -> 'nfm_reply' ->> 'body');
    when 'button' then
      body := coalesce(message -> 'button' ->> 'text', message -> 'button' ->> 'payload');
    when 'reaction' then
      body := message -> 'reaction' ->> 'emoji';
      reply_to_wamid := message -> 'reaction' ->> 'message_id';
    when 'order' then
      body := coalesce(message -> 'order' ->> 'text',
                       format('order of %s item(s)', jsonb_array_length(coalesce(message -> 'order' -> 'product_items', '[]'))));
    when 'system' then
      body := message -> 'system' ->> 'body';
    else
      -- 'unsupported', 'unknown' and any type Meta adds later: kept whole in raw, shown as unsupported.
      type := 'unsupported';
  end case;
  return next;
end
$$;
comment on function private.parse_message_content(jsonb) is
  'What a Cloud API message says, by type: text body, media fields, reply context (22023 when a required part is missing).';

create function private.route_result(m public.whatsapp_messages, duplicate boolean)
returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('message_id', m.id, 'wamid', m.wamid, 'routing_status', m.routing_status,
                            'landlord_id', m.landlord_id, 'tenant_id', m.tenant_id,
                            'conversation_id', m.conversation_id, 'duplicate', duplicate)
$$;
comment on function private.route_result(public.whatsapp_messages, boolean) is 'The JSON route_inbound_message returns for a stored message.';

create function public.route_inbound_message(message jsonb, contact jsonb default null, metadata jsonb default null)
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
  n_candidates int;
  n_open int;
  n_recent int;
  chosen uuid;
  chosen_row jsonb;
  rule text;
  v_status text;
  v_conversation uuid;
  consent text;
  keyword text;
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
      on conflict (phone) do update set opted_out = true, opted_out_at = now(), updated_at = now()
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

  -- 4. Candidates: one per landlord with an active lease for this phone.
  select coalesce(jsonb_agg(x order by x.landlord_id), '[]'), count(*),
         count(*) filter (where x.conversation_status is distinct from 'blocked')
    into candidates, n_candidates, n_open
  from (
    select distinct on (r.landlord_id)
           r.landlord_id, r.landlord_name, r.landlord_whatsapp_enabled as enabled,
           r.tenant_id, r.tenant_name, r.property_id, r.property_address,
           (select cv.status from public.whatsapp_conversations cv
             where cv.landlord_id = r.landlord_id and cv.tenant_phone = v_phone) as conversation_status
    from private.tenant_landlord_routing r
    where r.tenant_phone = v_phone
    order by r.landlord_id, r.lease_start_date desc, r.lease_id
  ) x;

  -- 5. Decide.
  if n_candidates = 0 then
    v_status := 'unknown_sender'; rule := 'no_active_lease_for_phone';
  elsif n_open = 0 then
    v_status := 'blocked'; rule := 'blocked_by_every_candidate';
  elsif n_candidates = 1 then
    select (e ->> 'landlord_id')::uuid into chosen from jsonb_array_elements(candidates) e;
    rule := 'single_candidate';
  else
    -- Several landlords. Only the tenant's own signals (or a support pin) choose, and only among
    -- those who have not blocked the phone: a landlord blocking a tenant never hands that
    -- tenant's messages to whoever else claims the phone.
    if c.reply_to_wamid is not null then
      select m.landlord_id into chosen from public.whatsapp_messages m
        join jsonb_array_elements(candidates) e on (e ->> 'landlord_id')::uuid = m.landlord_id
             and e ->> 'conversation_status' is distinct from 'blocked'
        where m.wamid = c.reply_to_wamid and m.direction = 'outgoing' and m.tenant_phone = v_phone;
      if chosen is not null then rule := 'reply_context'; end if;
    end if;
    if chosen is null then
      select p.landlord_id into chosen from private.routing_pins p
        join jsonb_array_elements(candidates) e on (e ->> 'landlord_id')::uuid = p.landlord_id
             and e ->> 'conversation_status' is distinct from 'blocked'
        where p.phone = v_phone and p.expires_at > now();
      if chosen is not null then rule := 'support_pin'; end if;
    end if;
    if chosen is null then
      select min(m.landlord_id::text)::uuid, count(distinct m.landlord_id) into chosen, n_recent
        from public.whatsapp_messages m
        join jsonb_array_elements(candidates) e on (e ->> 'landlord_id')::uuid = m.landlord_id
             and e ->> 'conversation_status' is distinct from 'blocked'
        join public.whatsapp_conversations cv on cv.id = m.conversation_id and cv.last_inbound_at is not null
        where m.direction = 'outgoing' and m.tenant_phone = v_phone and m.routing_status = 'outbound'
          and m.sent_at > v_at - interval '24 hours';
      if n_recent = 1 then
        rule := 'recent_outbound_in_established_conversation';
      else
        chosen := null;
        v_status := 'ambiguous'; rule := 'several_landlords';
      end if;
    end if;
  end if;

  if chosen is not null then
    select e into chosen_row from jsonb_array_elements(candidates) e where (e ->> 'landlord_id')::uuid = chosen;
    if not (chosen_row ->> 'enabled')::boolean then
      v_status := 'landlord_disabled';
      rule := rule || ':landlord_not_opted_in';
      chosen := null;
      chosen_row := null;   -- held: no landlord, tenant or property on the row; candidates stay in routing_metadata
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

  -- 6. Store (the conversation trigger bumps unread_count, last_message_at, preview).
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

  -- 7. ZenRent's own replies, at most once per phone per day.
  if v_status = 'unknown_sender' and consent is null then
    insert into private.phone_preferences as p (phone, last_courtesy_reply_at) values (v_phone, now())
    on conflict (phone) do update set last_courtesy_reply_at = now(), updated_at = now()
      where p.last_courtesy_reply_at is null or p.last_courtesy_reply_at < now() - interval '1 day'
    returning * into prefs;
    if prefs.phone is not null and not prefs.opted_out then
      perform private.queue_system_reply(v_phone, cfg.courtesy_reply_text, 'courtesy');
    end if;
  elsif v_status = 'ambiguous' and consent is null then
    insert into private.phone_preferences as p (phone, last_clarification_reply_at) values (v_phone, now())
    on conflict (phone) do update set last_clarification_reply_at = now(), updated_at = now()
      where p.last_clarification_reply_at is null or p.last_clarification_reply_at < now() - interval '1 day'
    returning * into prefs;
    if prefs.phone is not null and not prefs.opted_out then
      perform private.queue_system_reply(v_phone, cfg.clarification_reply_text, 'clarification');
    end if;
  end if;

  return private.route_result(inserted, false);
end
$$;

comment on function public.route_inbound_message(jsonb, jsonb, jsonb) is
  'Service role: file one Cloud API message (an element of value.messages[]) in the right landlord''s conversation, '
  'or hold it. Idempotent on wamid. Returns {message_id, wamid, routing_status, landlord_id, tenant_id, conversation_id, duplicate}.';
revoke execute on function public.route_inbound_message(jsonb, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.route_inbound_message(jsonb, jsonb, jsonb) to service_role;
