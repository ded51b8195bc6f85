-- Why: landlords send files too (a receipt, a photo of the repair). A landlord uploads a photo or
-- a document into their own outbound folder of the whatsapp-media bucket (Storage RLS lets them
-- write only there) and calls send_whatsapp_media(): the same rules as text apply (opted in, not
-- blocked, tenant not opted out, not declined, the 24-hour window: media is free-form), the
-- caption carries the "From <name> via ZenRent:" signature, and the message waits (media
-- pending) while the media worker uploads the file to Meta (POST /{phone_number_id}/media, an
-- `upload` job); once Meta's media id is recorded the sender claims it and sends it by id.

alter table public.whatsapp_messages
  drop constraint whatsapp_messages_outbound_kind_check,
  add constraint whatsapp_messages_outbound_kind_check check (outbound_kind in ('text', 'template', 'interactive', 'media'));
alter table private.media_jobs
  drop constraint media_jobs_kind_check,
  add constraint media_jobs_kind_check check (kind in ('download', 'move', 'upload'));

-- WhatsApp's media type of a MIME type the bucket takes (stickers are only ever received).
create function private.media_type_of(mime_type text)
returns text
language sql
immutable
security invoker
set search_path = ''
as $$
  select case split_part(lower(btrim(split_part(coalesce(mime_type, ''), ';', 1))), '/', 1)
    when 'image' then 'image' when 'video' then 'video' when 'audio' then 'audio' else 'document' end
$$;
comment on function private.media_type_of(text) is 'image, video, audio or document: how WhatsApp sends a file of this MIME type.';

create function public.send_whatsapp_media(conversation_id uuid, storage_path text, caption text default null)
returns uuid
language plpgsql
security definer -- landlords cannot insert messages or media jobs directly; this enforces the sending rules
set search_path = ''
as $$
declare
  me public.user_profiles := private.current_landlord();
  c public.whatsapp_conversations := private.own_conversation(conversation_id, me.id);
  object storage.objects;
  mime text;
  kind text;
  signature text := format('From %s via ZenRent:', me.full_name);
  id uuid;
begin
  if storage_path is null or storage_path not like me.id::text || '/outbound/%' or storage_path ~ '(^|/)\.\.?(/|$)' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'the file must be in your outbound folder',
      hint = format('upload it to whatsapp-media/%s/outbound/<file> first', me.id);
  end if;
  select * into object from storage.objects o where o.bucket_id = 'whatsapp-media' and o.name = storage_path;
  if object.id is null then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'no such file in your outbound folder',
      hint = 'upload it first, then send it';
  end if;
  mime := object.metadata ->> 'mimetype';
  kind := private.media_type_of(mime);
  if char_length(concat_ws(e'\n', signature, caption)) > 1024 then
    raise exception using errcode = '22023', detail = 'message_too_long',
      message = 'the caption with the signature is over WhatsApp''s 1,024 characters', hint = 'shorten the caption';
  end if;
  perform private.check_can_send(me, c, true);
  insert into public.whatsapp_messages (direction, type, body, landlord_signature, status, routing_status, outbound_kind,
                                        landlord_id, tenant_id, property_id, conversation_id, tenant_phone, to_phone,
                                        is_from_tenant, media_mime_type, media_path, media_size, media_status, sent_at)
  values ('outgoing', kind, nullif(btrim(caption), ''), signature, 'queued', 'outbound', 'media',
          me.id, c.tenant_id, c.property_id, c.id, c.tenant_phone, c.tenant_phone,
          false, mime, storage_path, (object.metadata ->> 'size')::bigint, 'pending', now())
  returning whatsapp_messages.id into id;
  insert into private.media_jobs (message_id, kind, mime_type, media_type, from_path)
  values (id, 'upload', mime, kind, storage_path);
  return id;
end
$$;
comment on function public.send_whatsapp_media(uuid, text, text) is
  'Landlord: send a file from their outbound folder (image, video, audio, document) in one of their conversations, '
  'under the same rules as text; the caption carries the signature. Goes out once the media worker has uploaded it to Meta.';
revoke execute on function public.send_whatsapp_media(uuid, text, text) from public, anon, authenticated;
grant execute on function public.send_whatsapp_media(uuid, text, text) to authenticated;

create function public.complete_media_upload(job_id bigint, meta_media_id text)
returns void
language plpgsql
security definer -- writes private.media_jobs and the message's media id; service_role only
set search_path = ''
as $$
declare
  v_message uuid;
begin
  if nullif(btrim(meta_media_id), '') is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'pass the media id Meta returned',
      hint = 'POST /{phone_number_id}/media answers {"id": ...}';
  end if;
  update private.media_jobs j set done_at = now(), claimed_at = null, last_error = null
  where j.id = complete_media_upload.job_id and j.kind = 'upload' and j.done_at is null
  returning j.message_id into v_message;
  if v_message is null then
    return;   -- already completed: a repeated call changes nothing
  end if;
  update public.whatsapp_messages m set media_id = meta_media_id, media_status = 'stored', media_error = null
  where m.id = v_message;
end
$$;
comment on function public.complete_media_upload(bigint, text) is
  'Service role: an outbound file is uploaded to Meta (its media id recorded): the sender may now send the message.';
revoke execute on function public.complete_media_upload(bigint, text) from public, anon, authenticated;
grant execute on function public.complete_media_upload(bigint, text) to service_role;

-- A failed upload fails its message too (nothing would ever send it).
create function private.trg_fail_unsendable_media()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  if new.direction = 'outgoing' and new.status = 'queued' then
    new.status := 'failed';
    new.failed_at := now();
    new.error_title := 'the file could not be uploaded to WhatsApp: ' || coalesce(new.media_error, 'unknown');
  end if;
  return new;
end
$$;
comment on function private.trg_fail_unsendable_media() is 'Trigger: an outbound message whose media failed is failed too.';
create trigger whatsapp_messages_fail_unsendable_media before update of media_status on public.whatsapp_messages
  for each row when (new.media_status = 'failed' and old.media_status is distinct from 'failed')
  execute function private.trg_fail_unsendable_media();

-- The payload of a media message: sent by Meta's media id, the signature before the caption
-- (audio takes no caption).
create or replace function private.outbound_payload(m public.whatsapp_messages)
returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object('messaging_product', 'whatsapp', 'recipient_type', 'individual', 'to', m.to_phone,
                            'type', case when m.outbound_kind = 'media' then m.type else m.outbound_kind end,
                            'biz_opaque_callback_data', m.id::text)
         || case m.outbound_kind
              when 'text' then jsonb_build_object('text', jsonb_build_object(
                'body', concat_ws(e'\n', m.landlord_signature, m.body), 'preview_url', false))
              when 'template' then jsonb_build_object('template', m.template)
              when 'interactive' then jsonb_build_object('interactive', m.interactive)
              when 'media' then jsonb_build_object(m.type, jsonb_strip_nulls(jsonb_build_object(
                'id', m.media_id,
                'caption', case when m.type <> 'audio' then concat_ws(e'\n', m.landlord_signature, m.body) end)))
            end
         || case when m.reply_to_wamid is not null
              then jsonb_build_object('context', jsonb_build_object('message_id', m.reply_to_wamid)) else '{}'::jsonb end
$$;

-- The sender claims a media message only once Meta has its file.
create or replace function public.claim_outbound_messages(batch_size integer default 10)
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
      and (q.outbound_kind is distinct from 'media' or q.media_status = 'stored')
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
