-- Why: send_whatsapp_media (20261129170100) queued an upload job per call, and the media worker
-- is shared by every landlord and paced (ZR_MEDIA_RATE; Meta throttles the one number's media
-- calls): a landlord calling it 10,000 times with one file would put 10,000 uploads ahead of
-- every tenant's photos. A landlord now has at most private.max_pending_uploads() (10) files
-- waiting at once; the next is refused (55000 too_many_pending_files) until some have gone out.
-- Calls by one landlord are serialized by an advisory lock, so parallel calls cannot pass the cap.

create function private.max_pending_uploads()
returns integer
language sql
immutable
security invoker
set search_path = ''
as $$ select 10 $$;
comment on function private.max_pending_uploads() is 'How many of a landlord''s files may wait for their upload to Meta at once.';

create or replace function public.send_whatsapp_media(conversation_id uuid, storage_path text, caption text default null)
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
  -- One landlord's files must not starve everyone's: the media worker is shared and paced (Meta
  -- throttles the one number), and tenants' photos wait behind uploads in the same queue.
  perform pg_advisory_xact_lock(hashtextextended('send_whatsapp_media:' || me.id::text, 0));
  if (select count(*) from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id
      where j.kind = 'upload' and j.done_at is null and m.landlord_id = me.id) >= private.max_pending_uploads() then
    raise exception using errcode = '55000', detail = 'too_many_pending_files',
      message = format('you have %s files waiting to be sent', private.max_pending_uploads()),
      hint = 'wait until they have gone out, then send more';
  end if;
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
