-- Landlords send files (issue 17): send_whatsapp_media() takes only a file from the caller's own
-- outbound folder, applies every rule text does (the 24-hour window, STOP, a blocked conversation,
-- WhatsApp turned off), signs the caption, and the message waits until the media worker has the
-- file with Meta: the sender never claims it earlier, and a failed upload fails the message.
-- Attacks: a landlord sending another landlord's file, a path that climbs out of the folder,
-- another landlord's conversation, a worker call from a landlord.
-- Phones 4474009100xx are used only here.
begin;
select plan(27);

select tests.add_landlord('ms_lena', 'Lena Landlord');
select tests.add_landlord('ms_mark', 'Mark Other');
select tests.add_tenancy('ms_lena', 'Nia', '07400 910001', '1 Media Mews');
select tests.add_tenancy('ms_lena', 'Oli', '07400 910002', '2 Media Mews');
select tests.add_tenancy('ms_lena', 'Pat', '07400 910003', '3 Media Mews');
select tests.add_tenancy('ms_mark', 'Quin', '07400 910004', '4 Other Road');
select tests.route_as_webhook(tests.text_message('wamid.MS_1', '447400910001', 'can you send the receipt?'));
select tests.route_as_webhook(tests.text_message('wamid.MS_2', '447400910002', 'old news', 2 * 86400));
select tests.route_as_webhook(tests.text_message('wamid.MS_3', '447400910003', 'hello'));
select tests.route_as_webhook(tests.text_message('wamid.MS_4', '447400910003', 'STOP'));
select tests.route_as_webhook(tests.text_message('wamid.MS_5', '447400910004', 'hi Mark'));

-- Files as the Storage server records an upload: the name, and the MIME type and size in metadata.
insert into storage.objects (bucket_id, name, owner_id, metadata)
select 'whatsapp-media', tests.get_supabase_uid(who) || '/outbound/' || file, tests.get_supabase_uid(who),
       jsonb_build_object('mimetype', mime, 'size', 2048)
from (values ('ms_lena', 'receipt.pdf', 'application/pdf'), ('ms_lena', 'boiler.jpg', 'image/jpeg'),
             ('ms_lena', 'note.ogg', 'audio/ogg; codecs=opus'), ('ms_mark', 'private.pdf', 'application/pdf')) f(who, file, mime);

create function tests.lena_file(file text) returns text language sql stable set search_path = '' as $$
  select tests.get_supabase_uid('ms_lena') || '/outbound/' || file
$$;
create function tests.send_as_lena(phone text, path text, caption text default null) returns text
language sql set search_path = '' as $$
  select tests.refusal_of(format('select public.send_whatsapp_media(%L, %L, %L)',
                                 tests.conversation_id('ms_lena', phone), path, caption))
$$;

-- -- What may be sent ------------------------------------------------------------------------------------
select tests.authenticate_as('ms_lena');
select is(tests.send_as_lena('447400910001', tests.get_supabase_uid('ms_mark') || '/outbound/private.pdf'),
  '22023 invalid_value', 'a landlord cannot send another landlord''s file (22023)');
select is(tests.send_as_lena('447400910001', tests.lena_file('../../' || tests.get_supabase_uid('ms_mark') || '/outbound/private.pdf')),
  '22023 invalid_value', 'nor reach it by climbing out of her folder');
select is(tests.send_as_lena('447400910001', tests.get_supabase_uid('ms_lena') || '/' || gen_random_uuid() || '/x.pdf'),
  '22023 invalid_value', 'nor send a file from outside her outbound folder');
select is(tests.send_as_lena('447400910001', tests.lena_file('missing.pdf')), 'P0002 not_found', 'a file that is not there: P0002');
select is(tests.send_as_lena('447400910001', null), '22023 invalid_value', 'no path: 22023');
select is(tests.send_as_lena('447400910001', tests.lena_file('receipt.pdf'), repeat('x', 1024)), '22023 message_too_long',
  'a caption over 1,024 characters with the signature is refused');
select is(tests.refusal_of(format('select public.send_whatsapp_media(%L, %L)', tests.conversation_id('ms_mark', '447400910004'),
                                  tests.lena_file('receipt.pdf'))),
  'P0002 not_found', 'another landlord''s conversation is not found');

-- -- The rules text follows -----------------------------------------------------------------------------
select is(tests.send_as_lena('447400910002', tests.lena_file('receipt.pdf')), '55000 window_closed',
  'outside the 24-hour window a file is refused like free text');
select is(tests.send_as_lena('447400910003', tests.lena_file('receipt.pdf')), '55000 tenant_opted_out',
  'a tenant who sent STOP gets no file');

-- -- Sent once the upload is done ---------------------------------------------------------------------
select isnt(public.send_whatsapp_media(tests.conversation_id('ms_lena', '447400910001'), tests.lena_file('receipt.pdf'), 'Your receipt'),
  null, 'Lena sends the receipt to Nia');
select isnt(public.send_whatsapp_media(tests.conversation_id('ms_lena', '447400910001'), tests.lena_file('note.ogg'), 'ignored'),
  null, 'and a voice note');
reset role;
select results_eq($$ select type, status, media_status, media_mime_type from public.whatsapp_messages
                     where media_path like tests.lena_file('%') order by type $$,
  $$ values ('audio', 'queued', 'pending', 'audio/ogg; codecs=opus'), ('document', 'queued', 'pending', 'application/pdf') $$,
  'both wait, media pending, typed by their MIME type');
select is((select count(*)::int from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id
           where j.kind = 'upload' and m.media_path like tests.lena_file('%')), 2, 'each has an upload job');
select is((select count(*)::int from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id
           where j.kind <> 'upload' and m.media_path like tests.lena_file('%')), 0, 'and no other job (nothing to download)');
select tests.authenticate_as_service_role();
select is_empty($$ select 1 from public.claim_outbound_messages(10) where kind = 'media' $$,
  'the sender does not claim a file Meta does not have yet');
reset role;

select tests.authenticate_as('ms_lena');
select is(tests.refusal_of($$ select public.complete_media_upload(1, 'media.forged') $$), '42501 -',
  'a landlord cannot mark an upload done');
reset role;

create temp table uploads on commit drop as
  select j.id, m.type from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id
  where j.kind = 'upload' and m.media_path like tests.lena_file('%');
grant select on uploads to service_role;
select tests.authenticate_as_service_role();
select public.complete_media_upload((select id from uploads where type = 'document'), 'media.up.1');
select public.complete_media_upload((select id from uploads where type = 'document'), 'media.up.other');
select public.complete_media_upload((select id from uploads where type = 'audio'), 'media.up.2');
create temp table sent on commit drop as select * from public.claim_outbound_messages(10) where kind = 'media';
reset role;
select is((select media_id from public.whatsapp_messages where type = 'document' and media_path like tests.lena_file('%')), 'media.up.1',
  'a repeated completion changes nothing');
select is((select count(*)::int from sent), 2, 'once uploaded, the sender claims both');
select is((select payload -> 'document' from sent where payload ->> 'type' = 'document'),
  jsonb_build_object('id', 'media.up.1', 'caption', e'From Lena Landlord via ZenRent:\nYour receipt'),
  'a document goes by Meta''s media id, the signature before the caption');
select is((select payload -> 'audio' from sent where payload ->> 'type' = 'audio'), '{"id": "media.up.2"}'::jsonb,
  'audio takes no caption');
select is((select payload ->> 'to' from sent limit 1), '447400910001', 'to the tenant''s normalized phone');

-- -- Flooding the shared worker -------------------------------------------------------------------------
-- A hostile landlord calling send_whatsapp_media in a loop: at most 10 files wait at once.
select tests.authenticate_as('ms_lena');
select public.send_whatsapp_media(tests.conversation_id('ms_lena', '447400910001'), tests.lena_file('receipt.pdf'))
from generate_series(1, 10);
select is(tests.refusal_of(format('select public.send_whatsapp_media(%L, %L)', tests.conversation_id('ms_lena', '447400910001'),
                                  tests.lena_file('receipt.pdf'))),
  '55000 too_many_pending_files', 'the eleventh file waiting for upload is refused (55000)');
reset role;
update private.media_jobs j set done_at = now() from public.whatsapp_messages m
where m.id = j.message_id and j.kind = 'upload' and j.done_at is null and m.landlord_id = tests.get_supabase_uid('ms_lena');
select tests.authenticate_as('ms_lena');
select isnt(public.send_whatsapp_media(tests.conversation_id('ms_lena', '447400910001'), tests.lena_file('receipt.pdf')), null,
  'once they have gone out, she sends again');
reset role;
update private.media_jobs j set done_at = now() from public.whatsapp_messages m
where m.id = j.message_id and j.kind = 'upload' and j.done_at is null and m.landlord_id = tests.get_supabase_uid('ms_lena');

-- -- A failed upload fails its message ----------------------------------------------------------------------
select tests.authenticate_as('ms_lena');
select public.send_whatsapp_media(tests.conversation_id('ms_lena', '447400910001'), tests.lena_file('boiler.jpg'));
reset role;
create temp table image_upload on commit drop as
  select j.id from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id where m.media_path = tests.lena_file('boiler.jpg') and j.kind = 'upload';
grant select on image_upload to service_role;
select tests.authenticate_as_service_role();
select public.fail_media_job((select id from image_upload), 'upload_rejected', false);
reset role;
select results_eq($$ select status, media_status, failed_at is not null from public.whatsapp_messages where media_path = tests.lena_file('boiler.jpg') $$,
  $$ values ('failed', 'failed', true) $$, 'a permanent upload failure fails the message, so nothing waits forever');
create temp table waiting on commit drop as select count(*)::int as n from private.media_jobs where done_at is null;
grant select on waiting to service_role;
select tests.authenticate_as_service_role();
select is((public.whatsapp_service_status() -> 'media_failed_last_24h' ->> 'upload:upload_rejected')::int, 1,
  'the status page and /metrics count the failed upload by kind and code');
select is((public.whatsapp_service_status() ->> 'media_pending')::int, (select n from waiting), 'and the media jobs still waiting');
reset role;
select tests.authenticate_as('ms_mark');
select is_empty($$ select 1 from public.whatsapp_messages where media_path like tests.lena_file('%') $$,
  'another landlord sees none of Lena''s files');
reset role;

select * from finish();
rollback;
