-- Why: ZenRent now also sends interactive messages (consent buttons, the picker), and what the
-- tenant will receive must be visible in one place: private.outbound_payload() builds the exact
-- JSON body the sender POSTs to /{phone_number_id}/messages, and claim_outbound_messages()
-- returns it as `payload` (the sender posts it unchanged). ZenRent's own messages about a
-- landlord (consent requests) are filed in that landlord's conversation, so the landlord sees
-- what went out in their name.

alter table public.whatsapp_messages
  add column interactive jsonb,
  drop constraint whatsapp_messages_outbound_kind_check,
  add constraint whatsapp_messages_outbound_kind_check check (outbound_kind in ('text', 'template', 'interactive'));
comment on column public.whatsapp_messages.interactive is 'The interactive object of an outbound interactive message (buttons or list).';

create function private.outbound_payload(m public.whatsapp_messages)
returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('messaging_product', 'whatsapp', 'recipient_type', 'individual', 'to', m.to_phone,
                            'type', m.outbound_kind, 'biz_opaque_callback_data', m.id::text)
         || case m.outbound_kind
              when 'text' then jsonb_build_object('text', jsonb_build_object(
                'body', concat_ws(e'\n', m.landlord_signature, m.body), 'preview_url', false))
              when 'template' then jsonb_build_object('template', m.template)
              when 'interactive' then jsonb_build_object('interactive', m.interactive)
            end
         || case when m.reply_to_wamid is not null
              then jsonb_build_object('context', jsonb_build_object('message_id', m.reply_to_wamid)) else '{}'::jsonb end
$$;
comment on function private.outbound_payload(public.whatsapp_messages) is
  'The exact JSON body POSTed to /{phone_number_id}/messages for an outbound message (signature included).';

-- One way ZenRent queues its own messages: text, interactive or template; about a landlord
-- (in their conversation) or not.
create function private.queue_zenrent_message(phone text, reason text, body text, interactive jsonb default null,
                                              template jsonb default null, landlord_id uuid default null,
                                              conversation_id uuid default null, reply_to_wamid text default null)
returns uuid
language plpgsql
security invoker
set search_path = ''
as $$
declare
  id uuid;
begin
  insert into public.whatsapp_messages (direction, type, body, interactive, template, status, routing_status, outbound_kind,
                                        tenant_phone, to_phone, is_from_tenant, landlord_id, conversation_id,
                                        reply_to_wamid, sent_at)
  values ('outgoing', case when template is not null then 'template' when interactive is not null then 'interactive' else 'text' end,
          queue_zenrent_message.body, queue_zenrent_message.interactive, queue_zenrent_message.template, 'queued', 'system',
          case when template is not null then 'template' when interactive is not null then 'interactive' else 'text' end,
          phone, phone, false, queue_zenrent_message.landlord_id, queue_zenrent_message.conversation_id,
          queue_zenrent_message.reply_to_wamid, now())
  returning whatsapp_messages.id into id;
  perform private.add_routing_metadata(id, jsonb_build_object('reason', reason));
  return id;
end
$$;
comment on function private.queue_zenrent_message(text, text, text, jsonb, jsonb, uuid, uuid, text) is
  'Queue a message from ZenRent itself (no signature): text, interactive or template, optionally about a landlord.';

create or replace function private.queue_system_reply(phone text, body text, reason text)
returns uuid
language sql
security invoker
set search_path = ''
as $$
  select private.queue_zenrent_message(phone, reason, body)
$$;

-- Its result gains `payload` (and loses text_body and template, which the payload holds): a new
-- return type needs DROP and CREATE. The one caller, the sender, ships with this change.
-- squawk-ignore ban-drop-function
drop function public.claim_outbound_messages(integer);
create function public.claim_outbound_messages(batch_size integer default 10)
returns table (id uuid, to_phone text, kind text, attempt_count integer, payload jsonb)
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
  returning m.id, m.tenant_phone, m.outbound_kind, m.attempt_count, private.outbound_payload(m);
end
$$;
comment on function public.claim_outbound_messages(integer) is
  'Service role: hand out up to batch_size queued messages due now, marking them sending (skip locked). '
  'payload is the exact JSON body to POST to /{phone_number_id}/messages.';
revoke execute on function public.claim_outbound_messages(integer) from public, anon, authenticated;
grant execute on function public.claim_outbound_messages(integer) to service_role;
