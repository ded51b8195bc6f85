-- Why: replies are queued in whatsapp_messages (status 'queued') and sent by workers. Workers
-- claim with FOR UPDATE SKIP LOCKED so no message is handed to two workers; a claimed message
-- is 'sending' until the worker records Meta's answer. Retryable failures go back to the queue
-- with exponential backoff and jitter; permanent ones are 'failed' with Meta's code and title.
-- A message stuck in 'sending' (worker crashed) is never re-sent blindly: a status webhook
-- naming it in biz_opaque_callback_data reconciles it, otherwise it becomes 'needs_review'.
-- Guarantee: at most once per message. ZenRent's own replies (courtesy, clarification, consent
-- acknowledgements) go through the same queue, without a landlord or signature.

create index whatsapp_messages_queue_idx on public.whatsapp_messages (next_attempt_at nulls first, created_at)
  where status = 'queued';
create index whatsapp_messages_sending_idx on public.whatsapp_messages (claimed_at) where status = 'sending';
create index whatsapp_messages_failed_idx on public.whatsapp_messages (failed_at) where status = 'failed';

create function private.queue_system_reply(phone text, body text, reason text)
returns uuid
language plpgsql
security invoker
set search_path = ''
as $$
declare
  id uuid;
begin
  insert into public.whatsapp_messages (direction, type, body, status, routing_status, outbound_kind, tenant_phone,
                                        to_phone, is_from_tenant, sent_at)
  values ('outgoing', 'text', queue_system_reply.body, 'queued', 'system', 'text', queue_system_reply.phone,
          queue_system_reply.phone, false, now())
  returning whatsapp_messages.id into id;
  perform private.add_routing_metadata(id, jsonb_build_object('reason', reason));
  return id;
end
$$;
comment on function private.queue_system_reply(text, text, text) is 'Queue a message from ZenRent itself (no landlord, no prefix).';

create function public.claim_outbound_messages(batch_size integer default 10)
returns table (id uuid, to_phone text, kind text, text_body text, template jsonb, attempt_count integer)
language plpgsql
security definer -- reads and marks queued messages of every landlord; service_role only
set search_path = ''
as $$
begin
  if batch_size is null or batch_size not between 1 and 1000 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'batch_size must be between 1 and 1000', hint = 'e.g. 10';
  end if;
  -- Rules can change after queueing: the landlord turned WhatsApp off, blocked the conversation,
  -- or the tenant sent STOP.
  update public.whatsapp_messages m set status = 'failed', failed_at = now(),
    error_title = case when private.is_opted_out(m.tenant_phone) then 'cancelled: the tenant opted out (STOP)'
                       when (select cv.status from public.whatsapp_conversations cv where cv.id = m.conversation_id) = 'blocked'
                         then 'cancelled: the conversation is blocked'
                       else 'cancelled: the landlord turned WhatsApp off' end
  where m.id in (
    select q.id from public.whatsapp_messages q
    left join public.user_profiles up on up.id = q.landlord_id
    left join public.whatsapp_conversations cv on cv.id = q.conversation_id
    where q.status = 'queued' and q.routing_status = 'outbound'
      and (q.next_attempt_at is null or q.next_attempt_at <= now())
      and (not coalesce(up.whatsapp_enabled, false) or private.is_opted_out(q.tenant_phone)
           or cv.status is not distinct from 'blocked')
    for update of q skip locked);

  return query
  with c as (
    select q.id from public.whatsapp_messages q
    where q.status = 'queued' and (q.next_attempt_at is null or q.next_attempt_at <= now())
    order by q.next_attempt_at nulls first, q.created_at
    limit batch_size
    for update skip locked
  )
  update public.whatsapp_messages m
    set status = 'sending', claimed_at = now(), attempt_count = m.attempt_count + 1
  from c where m.id = c.id
  returning m.id, m.tenant_phone, m.outbound_kind,
            case when m.outbound_kind = 'text' then concat_ws(e'\n', m.landlord_signature, m.body) end,
            m.template, m.attempt_count;
end
$$;
comment on function public.claim_outbound_messages(integer) is
  'Service role: hand out up to batch_size queued messages due now, marking them sending (skip locked). '
  'text_body is the full text to send, signature included.';

create function public.complete_outbound_message(message_id uuid, wamid text, error jsonb default null)
returns jsonb
language plpgsql
security definer -- records the send result of any landlord's message; service_role only
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
  max_attempts int := (select s.outbound_max_attempts from private.whatsapp_settings s);
  delay interval;
begin
  if (wamid is null) = (error is null) then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'pass exactly one of wamid and error',
      hint = 'wamid when Meta accepted the message, error {code, title, retryable, retry_after_seconds} otherwise';
  end if;
  if wamid is not null and btrim(wamid) = '' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'wamid is blank',
      hint = 'pass the messages[0].id Meta returned';
  end if;
  if error is not null and (jsonb_typeof(error) <> 'object'
      or (error ? 'code' and jsonb_typeof(error -> 'code') not in ('number', 'null'))
      or (error ? 'retryable' and jsonb_typeof(error -> 'retryable') not in ('boolean', 'null'))
      or (error ? 'retry_after_seconds' and jsonb_typeof(error -> 'retry_after_seconds') not in ('number', 'null'))) then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'error must be a JSON object {code: number, title, retryable: boolean, retry_after_seconds: number}',
      hint = '{"code": 131047, "title": "Re-engagement message", "retryable": false}';
  end if;
  select * into m from public.whatsapp_messages x where x.id = message_id and x.direction = 'outgoing' for update;
  if m.id is null then
    raise exception using errcode = 'P0002', detail = 'not_found', message = format('outbound message %s not found', message_id), hint = 'pass an id from claim_outbound_messages';
  end if;
  if m.status not in ('sending', 'needs_review') then
    raise exception using errcode = '55000', message = format('message %s is %s, not sending', message_id, m.status), detail = 'wrong_state',
      hint = 'only claimed messages can be completed';
  end if;

  if wamid is not null then
    if exists (select 1 from public.whatsapp_messages o where o.wamid = complete_outbound_message.wamid and o.id <> m.id) then
      raise exception using errcode = '23505', detail = 'duplicate', message = format('wamid %s already belongs to another message', wamid),
        hint = 'each wamid identifies one message';
    end if;
    update public.whatsapp_messages x set wamid = complete_outbound_message.wamid, status = 'sent', sent_at = now(),
      error_code = null, error_title = null, error_details = null, next_attempt_at = null
    where x.id = m.id;
    perform private.apply_pending_statuses(wamid);
    return jsonb_build_object('id', m.id, 'status', (select x.status from public.whatsapp_messages x where x.id = m.id), 'wamid', wamid);
  end if;

  if coalesce((error ->> 'retryable')::boolean, false) and m.attempt_count < max_attempts then
    -- 2 s, 4 s, 8 s ... capped at 15 min, with ±50 % jitter; Meta's Retry-After wins when longer.
    delay := greatest(
      make_interval(secs => least(power(2, m.attempt_count) * 2, 900) * (0.5 + random())),
      make_interval(secs => coalesce((error ->> 'retry_after_seconds')::numeric, 0)));
    update public.whatsapp_messages x set status = 'queued', next_attempt_at = now() + delay,
      error_code = (error ->> 'code')::int, error_title = error ->> 'title', error_details = error
    where x.id = m.id;
    return jsonb_build_object('id', m.id, 'status', 'queued', 'next_attempt_at', now() + delay, 'attempt_count', m.attempt_count);
  end if;

  update public.whatsapp_messages x set status = 'failed', failed_at = now(),
    error_code = (error ->> 'code')::int,
    error_title = coalesce(error ->> 'title', error ->> 'message', 'send failed')
                  || case when (error ->> 'code') = '131047' then ' (24-hour window closed: send a template)' else '' end,
    error_details = error
  where x.id = m.id;
  return jsonb_build_object('id', m.id, 'status', 'failed', 'attempt_count', m.attempt_count);
end
$$;
comment on function public.complete_outbound_message(uuid, text, jsonb) is
  'Service role: record a claimed message''s send result: sent with wamid; retryable error back to the queue with '
  'backoff until outbound_max_attempts; permanent error failed with Meta''s code and title.';

create function public.reconcile_stuck_outbound(timeout_seconds integer default 300)
returns integer
language plpgsql
security definer -- marks any landlord's stuck messages; service_role only
set search_path = ''
as $$
declare
  n integer;
begin
  if timeout_seconds is null or timeout_seconds < 1 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'timeout_seconds must be positive', hint = 'e.g. 300';
  end if;
  update public.whatsapp_messages m set status = 'needs_review',
    error_title = 'sender stopped while sending: check the tenant''s chat before re-sending'
  where m.status = 'sending' and m.wamid is null and m.claimed_at < now() - make_interval(secs => timeout_seconds);
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function public.reconcile_stuck_outbound(integer) is
  'Service role: messages claimed longer ago than timeout_seconds with no result become needs_review (never re-sent blindly).';

revoke execute on function public.claim_outbound_messages(integer), public.complete_outbound_message(uuid, text, jsonb),
  public.reconcile_stuck_outbound(integer) from public, anon, authenticated;
grant execute on function public.claim_outbound_messages(integer), public.complete_outbound_message(uuid, text, jsonb),
  public.reconcile_stuck_outbound(integer) to service_role;
