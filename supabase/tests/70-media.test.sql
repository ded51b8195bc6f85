-- Inbound media kept (issue 17): every media message is queued for download when it is stored,
-- object names carry no user-typed text, jobs are claimed once and reclaimed after a dead worker,
-- failures keep what is recoverable, and Storage's RLS lets a landlord read only their own
-- messages' media, support only held media, clients write only under their own outbound folder —
-- checked the way the Storage server scopes a request (role, request.jwt.claims, storage.operation).
-- Phones 4474009000xx are used only here.
begin;
select plan(24);

select tests.add_landlord('md_lena', 'Lena Landlord');
select tests.add_landlord('md_mark', 'Mark Other');
select tests.create_supabase_user('md_sup', 'sky@support.zenrent.test', '{"role": "support"}');
select tests.add_tenancy('md_lena', 'Nia', '07400 900001', '1 Media Mews');

-- A storage request as the server scopes it: the user's role and claims, and the operation.
create function tests.as_storage(identifier text, operation text)
returns void language plpgsql set search_path = '' as $$
begin
  if identifier is null then perform tests.clear_authentication(); else perform tests.authenticate_as(identifier); end if;
  perform set_config('storage.operation', operation, true);
  perform set_config('storage.allow_delete_query', 'true', true);   -- as the server does for its own deletes
end
$$;

create function tests.image(wamid text, sender text, file_name text default null)
returns jsonb language sql stable set search_path = '' as $$
  select jsonb_build_object('from', sender, 'id', wamid, 'timestamp', tests.unix_ts(), 'type', 'document',
                            'document', jsonb_strip_nulls(jsonb_build_object('id', 'media.' || wamid, 'mime_type', 'application/pdf',
                                                                             'sha256', 'c2hhMjU2', 'filename', file_name)))
$$;

-- -- Queued when stored ------------------------------------------------------------------------------
select is(tests.route_as_webhook(tests.image('wamid.MD_1', '447400900001', '../../etc/passwd')) ->> 'routing_status', 'delivered',
  'a document from Lena''s tenant is delivered');
select results_eq($$ select media_status, media_id from public.whatsapp_messages where wamid = 'wamid.MD_1' $$,
  $$ values ('pending', 'media.wamid.MD_1') $$, 'its media is pending');
select is((select count(*)::int from private.media_jobs j where j.message_id = tests.message_id('wamid.MD_1') and j.kind = 'download'), 1,
  'and one download job is queued');
select is(tests.route_as_webhook(tests.text_message('wamid.MD_2', '447400900001', 'and a text')) ->> 'routing_status', 'delivered',
  'a text message');
select is((select media_status from public.whatsapp_messages where wamid = 'wamid.MD_2'), null, 'has no media to keep');
select is(tests.route_as_webhook(tests.image('wamid.MD_3', '447400900099')) ->> 'routing_status', 'unknown_sender', 'media from an unknown number');
select is((select media_status from public.whatsapp_messages where wamid = 'wamid.MD_3'), 'pending', 'is kept too (held)');

-- -- Claimed once, names without user text -------------------------------------------------------------
select tests.authenticate_as_service_role();
create temp table claimed on commit drop as select * from public.claim_media_jobs(10);
reset role;
select results_eq($$ select object_path from claimed where message_id = tests.message_id('wamid.MD_1') $$,
  format($f$ values (%L) $f$, tests.get_supabase_uid('md_lena') || '/' || (tests.message('wamid.MD_1')).conversation_id || '/'
                            || tests.message_id('wamid.MD_1') || '.pdf'),
  'a delivered message''s media goes to <landlord>/<conversation>/<message>.<ext>: the file name the tenant typed is nowhere');
select results_eq($$ select object_path from claimed where message_id = tests.message_id('wamid.MD_3') $$,
  format($f$ values (%L) $f$, 'held/' || tests.message_id('wamid.MD_3') || '.pdf'), 'a held message''s media goes to held/');
select tests.authenticate_as_service_role();
select is_empty($$ select 1 from public.claim_media_jobs(10) $$, 'a claimed job is not handed out twice');
reset role;
update private.media_jobs set claimed_at = now() - interval '11 minutes' where message_id = tests.message_id('wamid.MD_3');
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.claim_media_jobs(10) where message_id = tests.message_id('wamid.MD_3')), 1,
  'a job claimed by a worker that died (over 10 minutes ago) is claimed again');
select public.complete_media_job((select job_id from claimed where message_id = tests.message_id('wamid.MD_1')),
  (select object_path from claimed where message_id = tests.message_id('wamid.MD_1')), 1234);
select public.fail_media_job((select job_id from claimed where message_id = tests.message_id('wamid.MD_3')), 'gone', false);
reset role;
select results_eq($$ select wamid, media_status, media_size, media_error from public.whatsapp_messages
                     where wamid in ('wamid.MD_1', 'wamid.MD_3') order by wamid $$,
  $$ values ('wamid.MD_1', 'stored', 1234::bigint, null::text), ('wamid.MD_3', 'failed', null::bigint, 'gone') $$,
  'stored with its size; a permanent failure is failed with a code the app can show');
select tests.route_as_webhook(tests.image('wamid.MD_4', '447400900001'));
select tests.authenticate_as_service_role();
select public.fail_media_job((select job_id from public.claim_media_jobs(10) where message_id = tests.message_id('wamid.MD_4')), 'graph_down', true, 120);
reset role;
select results_eq($$ select m.media_status, j.done_at is null, j.next_attempt_at >= now() + interval '120 seconds'
                     from private.media_jobs j join public.whatsapp_messages m on m.id = j.message_id where m.wamid = 'wamid.MD_4' $$,
  $$ values ('pending', true, true) $$, 'a retryable failure comes back later, no sooner than Meta''s Retry-After');
select tests.authenticate_as('md_lena');
select is(tests.refusal_of($$ select * from public.claim_media_jobs(1) $$), '42501 -', 'landlords cannot claim media jobs');
reset role;

-- -- Storage: who reads and writes what ------------------------------------------------------------------
select results_eq($$ select public, file_size_limit >= 104857600, 'application/pdf' = any(allowed_mime_types)
                     from storage.buckets where id = 'whatsapp-media' $$,
  $$ values (false, true, true) $$, 'the bucket is private, takes 100 MB documents and WhatsApp''s MIME types');
insert into storage.objects (bucket_id, name) values
  ('whatsapp-media', (tests.message('wamid.MD_1')).media_path),
  ('whatsapp-media', 'held/' || gen_random_uuid() || '.jpg');
select tests.as_storage('md_lena', 'storage.object.get_authenticated');
select is((select count(*)::int from storage.objects where bucket_id = 'whatsapp-media'), 1, 'Lena reads her message''s media, only that');
select tests.as_storage('md_mark', 'storage.object.get_authenticated');
select is_empty($$ select 1 from storage.objects where bucket_id = 'whatsapp-media' $$, 'another landlord reads none of it');
select tests.as_storage('md_sup', 'storage.object.get_authenticated');
select results_eq($$ select (storage.foldername(name))[1] from storage.objects where bucket_id = 'whatsapp-media' $$,
  $$ values ('held') $$, 'support reads held media only');
select tests.as_storage(null, 'storage.object.get_authenticated');
select is_empty($$ select 1 from storage.objects where bucket_id = 'whatsapp-media' $$, 'anon reads nothing');
select tests.as_storage('md_lena', 'storage.object.upload');
select lives_ok(format('insert into storage.objects (bucket_id, name, owner_id) values (%L, %L, %L)', 'whatsapp-media',
  tests.get_supabase_uid('md_lena') || '/outbound/leak-photo.jpg', tests.get_supabase_uid('md_lena')),
  'Lena uploads into her own outbound folder');
select throws_ok(format('insert into storage.objects (bucket_id, name) values (%L, %L)', 'whatsapp-media',
  tests.get_supabase_uid('md_lena') || '/' || gen_random_uuid() || '/forged.pdf'), '42501', null,
  'but not into a conversation folder (only the worker writes there)');
select tests.as_storage('md_mark', 'storage.object.upload');
select throws_ok(format('insert into storage.objects (bucket_id, name) values (%L, %L)', 'whatsapp-media',
  tests.get_supabase_uid('md_lena') || '/outbound/planted.jpg'), '42501', null, 'nobody writes into another landlord''s folder');
select throws_ok(format('insert into storage.objects (bucket_id, name) values (%L, %L)', 'whatsapp-media', 'held/planted.jpg'),
  '42501', null, 'nor into held/');
select tests.as_storage('md_mark', 'storage.object.delete');
select is(tests.affected(format('delete from storage.objects where name = %L', (tests.message('wamid.MD_1')).media_path)), 0,
  'another landlord cannot delete Lena''s media');
reset role;

select * from finish();
rollback;
