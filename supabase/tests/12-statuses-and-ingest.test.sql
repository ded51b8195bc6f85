-- public.record_message_status(): statuses never go backwards, failed keeps Meta's error,
-- unknown wamids wait and are applied later. public.ingest_whatsapp_webhook(): the whole body
-- (every entry, change, message, status, error) in one call, other numbers and objects refused
-- with nothing written. And the service-role RPCs and private tables are closed to anon and
-- authenticated. Phones 4474003000xx are used only here.
begin;
select plan(78);

-- Setup (as postgres) ----------------------------------------------------------------------
select tests.create_supabase_user('st_lena');
insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at) values
  (tests.get_supabase_uid('st_lena'), 'Lena ST', true, now());
insert into public.properties (id, user_id, address) values
  ('a0000000-0012-4000-8000-000000000001', tests.get_supabase_uid('st_lena'), '1 Status Street');
insert into public.tenants (id, user_id, name, phone) values
  ('b0000000-0012-4000-8000-000000000001', tests.get_supabase_uid('st_lena'), 'Tess', '07400 300001');
insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b0000000-0012-4000-8000-000000000001', 'a0000000-0012-4000-8000-000000000001', 'active', '2025-01-01');

-- An outbound message of Lena's as the sender leaves it (status, wamid possibly still null).
create function tests.st_out(wamid text, status text) returns uuid language plpgsql set search_path = '' as $$
declare
  id uuid;
begin
  insert into public.whatsapp_messages (wamid, direction, is_from_tenant, type, body, status, routing_status, outbound_kind,
                                        landlord_id, tenant_phone, to_phone, sent_at)
  values (wamid, 'outgoing', false, 'text', 'Hello Tess', status, 'outbound', 'text',
          tests.get_supabase_uid('st_lena'), '447400300001', '447400300001', now() - interval '1 hour')
  returning whatsapp_messages.id into id;
  return id;
end
$$;
create function tests.st(wamid text) returns table (status text, delivered_at timestamptz, read_at timestamptz,
  failed_at timestamptz, error_code int, error_title text)
language sql stable set search_path = '' as $$
  select m.status, m.delivered_at, m.read_at, m.failed_at, m.error_code, m.error_title
  from public.whatsapp_messages m where m.wamid = st.wamid
$$;
select tests.st_out('wamid.ST_1', 'sent');
select tests.st_out('wamid.ST_2', 'sent');
select tests.st_out('wamid.ST_3', 'sent');
select tests.st_out('wamid.ST_4', 'sent');
select tests.st_out('wamid.ST_5', 'sending');
select tests.st_out('wamid.ST_B1', 'sent');
select set_config('tests.callback_id', tests.st_out(null, 'sending')::text, true);
grant execute on all functions in schema tests to service_role;

-- record_message_status: monotonic ----------------------------------------------------------
select tests.authenticate_as_service_role();
select is(public.record_message_status('wamid.ST_1', 'delivered', '2026-11-20 10:01:00+00'),
  '{"wamid": "wamid.ST_1", "status": "delivered", "applied": true, "pending": false}'::jsonb,
  'a status for a known message is applied');
select results_eq($$ select status, delivered_at, read_at from tests.st('wamid.ST_1') $$,
  $$ values ('delivered', '2026-11-20 10:01:00+00'::timestamptz, null::timestamptz) $$, 'sent -> delivered, with its time');
select public.record_message_status('wamid.ST_1', 'read', '2026-11-20 10:05:00+00');
select results_eq($$ select status, delivered_at, read_at from tests.st('wamid.ST_1') $$,
  $$ values ('read', '2026-11-20 10:01:00+00'::timestamptz, '2026-11-20 10:05:00+00'::timestamptz) $$, 'delivered -> read');
select public.record_message_status('wamid.ST_1', 'sent', '2026-11-20 10:00:00+00');
select is((select status from tests.st('wamid.ST_1')), 'read', 'a late sent does not overwrite read');
select public.record_message_status('wamid.ST_1', 'delivered', '2026-11-20 10:03:00+00');
select results_eq($$ select status, delivered_at from tests.st('wamid.ST_1') $$,
  $$ values ('read', '2026-11-20 10:01:00+00'::timestamptz) $$,
  'a repeated late delivered neither lowers the status nor moves the first delivery time');
select public.record_message_status('wamid.ST_2', 'read', '2026-11-20 11:00:00+00');
select results_eq($$ select status, delivered_at, read_at from tests.st('wamid.ST_2') $$,
  $$ values ('read', null::timestamptz, '2026-11-20 11:00:00+00'::timestamptz) $$, 'read may arrive without delivered');
select public.record_message_status('wamid.ST_2', 'delivered', '2026-11-20 10:59:00+00');
select results_eq($$ select status, delivered_at from tests.st('wamid.ST_2') $$,
  $$ values ('read', '2026-11-20 10:59:00+00'::timestamptz) $$, 'delivered arriving after read only fills delivered_at');

select public.record_message_status('wamid.ST_3', 'failed', '2026-11-20 12:00:00+00',
  '[{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
     "error_data": {"details": "More than 24 hours have passed since the recipient last replied."}}]');
select results_eq($$ select status, failed_at, error_code, error_title from tests.st('wamid.ST_3') $$,
  $$ values ('failed', '2026-11-20 12:00:00+00'::timestamptz, 131047, 'Re-engagement message') $$,
  'failed records the time, code and title');
select is((select m.error_details -> 0 -> 'error_data' ->> 'details' from public.whatsapp_messages m where m.wamid = 'wamid.ST_3'),
  'More than 24 hours have passed since the recipient last replied.', 'and keeps the error details');
select public.record_message_status('wamid.ST_4', 'delivered', '2026-11-20 12:00:00+00');
select public.record_message_status('wamid.ST_4', 'failed', '2026-11-20 12:01:00+00', '[{"code": 131026, "title": "Message undeliverable"}]');
select results_eq($$ select status, error_code from tests.st('wamid.ST_4') $$,
  $$ values ('delivered', 131026) $$, 'a failed after delivered does not override delivered (the error is kept)');
select public.record_message_status('wamid.ST_1', 'failed', '2026-11-20 12:02:00+00', '[{"code": 131026, "title": "Message undeliverable"}]');
select is((select status from tests.st('wamid.ST_1')), 'read', 'nor does it override read');
select public.record_message_status('wamid.ST_5', 'sent', '2026-11-20 12:00:00+00');
select is((select status from tests.st('wamid.ST_5')), 'sent', 'sending -> sent');

-- A status heard before writes nothing (Meta redelivers); a new one stamps status_updated_at.
reset role;
update public.whatsapp_messages set status_updated_at = '2000-01-01' where wamid in ('wamid.ST_1', 'wamid.ST_3', 'wamid.ST_5');
select tests.authenticate_as_service_role();
select public.record_message_status('wamid.ST_1', 'read', '2026-11-20 10:05:00+00');
select public.record_message_status('wamid.ST_1', 'delivered', '2026-11-20 10:04:00+00');
select public.record_message_status('wamid.ST_3', 'failed', '2026-11-20 12:00:00+00',
  '[{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
     "error_data": {"details": "More than 24 hours have passed since the recipient last replied."}}]');
select public.record_message_status('wamid.ST_5', 'sent', '2026-11-20 12:00:00+00');
select results_eq(
  $$ select wamid, status_updated_at from public.whatsapp_messages where wamid in ('wamid.ST_1', 'wamid.ST_3', 'wamid.ST_5') order by wamid $$,
  $$ values ('wamid.ST_1', '2000-01-01'::timestamptz), ('wamid.ST_3', '2000-01-01'::timestamptz), ('wamid.ST_5', '2000-01-01'::timestamptz) $$,
  'a redelivered or stale status (same sent, older delivered, same failed) writes nothing');
select is(public.record_message_status('wamid.ST_5', 'sent', '2026-11-20 12:00:00+00') ->> 'applied', 'true',
  'and still reports the message as known (not pending)');
select public.record_message_status('wamid.ST_5', 'delivered', '2026-11-20 12:30:00+00');
select results_eq($$ select status, status_updated_at from public.whatsapp_messages where wamid = 'wamid.ST_5' $$,
  $$ values ('delivered', now()) $$, 'a status that changes something is written and stamped');
select lives_ok($$ select public.record_message_status('wamid.ST_5', 'failed', '2026-11-20 12:31:00+00', '[{"code": "E1", "title": "Odd"}]') $$,
  'an error code that is not a number is no cast error');
select results_eq($$ select status, error_code, error_title from tests.st('wamid.ST_5') $$,
  $$ values ('delivered', null::int, 'Odd') $$, 'its title is kept, the code left empty');

-- Unknown wamids wait ------------------------------------------------------------------------
select is(public.record_message_status('wamid.ST_LATE', 'delivered', '2026-11-20 13:00:00+00'),
  '{"wamid": "wamid.ST_LATE", "status": "delivered", "applied": false, "pending": true}'::jsonb,
  'a status for an unknown wamid is not an error: it is kept as pending');
select lives_ok($$ select public.record_message_status('wamid.ST_LATE', 'delivered', '2026-11-20 13:00:00+00') $$,
  'the same pending status twice is fine');
select public.record_message_status('wamid.ST_LATE', 'read', '2026-11-20 13:02:00+00');
reset role;
select results_eq($$ select status, status_at from private.pending_message_statuses where wamid = 'wamid.ST_LATE' order by status_at $$,
  $$ values ('delivered', '2026-11-20 13:00:00+00'::timestamptz), ('read', '2026-11-20 13:02:00+00'::timestamptz) $$,
  'pending statuses are kept once each');
-- The sender records the wamid and applies what arrived first.
select tests.st_out('wamid.ST_LATE', 'sent');
select is(private.apply_pending_statuses('wamid.ST_LATE'), 2, 'apply_pending_statuses applies both');
select results_eq($$ select status, delivered_at, read_at from tests.st('wamid.ST_LATE') $$,
  $$ values ('read', '2026-11-20 13:00:00+00'::timestamptz, '2026-11-20 13:02:00+00'::timestamptz) $$,
  'the late-recorded message ends up read, with both times');
select is_empty($$ select 1 from private.pending_message_statuses where wamid = 'wamid.ST_LATE' $$, 'applied statuses leave the pending table');

-- Bad input -----------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select throws_ok($$ select public.record_message_status('wamid.ST_1', 'seen', now()) $$, '22023', 'unknown message status ''seen''',
  'an unknown status is refused');
select throws_ok($$ select public.record_message_status('wamid.ST_1', null, now()) $$, '22023', null, 'a null status is refused');
select is(tests.refusal_of($$ select public.record_message_status('wamid.ST_1', 'read', null) $$), '22023 invalid_value',
  'a status without time is refused');
select is(tests.refusal_of($$ select public.record_message_status(' ', 'read', now()) $$), '22023 invalid_value',
  'a status without wamid is refused');
select throws_ok($$ select public.record_message_status('wamid.ST_1', 'failed', now(), '{"code": 1}') $$, '22023',
  'errors must be a JSON array', 'errors that are not an array are refused');

-- ingest_whatsapp_webhook ----------------------------------------------------------------------
reset role;
select public.configure_whatsapp('{"phone_number_id": "109990000000012"}');
create table tests.payloads (name text primary key, body jsonb not null);
grant select on tests.payloads to service_role;
insert into tests.payloads values
('batch', jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
  jsonb_build_object('id', '102290129340001', 'changes', jsonb_build_array(
    jsonb_build_object('field', 'messages', 'value', jsonb_build_object(
      'messaging_product', 'whatsapp',
      'metadata', jsonb_build_object('display_phone_number', '15550001212', 'phone_number_id', '109990000000012'),
      'contacts', jsonb_build_array(
        jsonb_build_object('profile', jsonb_build_object('name', 'Tess T'), 'wa_id', '447400300001'),
        jsonb_build_object('profile', jsonb_build_object('name', 'Stranger'), 'wa_id', '447400300009')),
      'messages', jsonb_build_array(
        jsonb_build_object('from', '447400300001', 'id', 'wamid.ST_IN_1', 'timestamp', '1795000000', 'type', 'text',
                           'text', jsonb_build_object('body', 'First of the batch')),
        jsonb_build_object('from', '447400300009', 'id', 'wamid.ST_IN_2', 'timestamp', '1795000001', 'type', 'text',
                           'text', jsonb_build_object('body', 'Who am I?'))))),
    jsonb_build_object('field', 'account_update', 'value', jsonb_build_object('event', 'VERIFIED_ACCOUNT')))),
  jsonb_build_object('id', '102290129340001', 'changes', jsonb_build_array(
    jsonb_build_object('field', 'messages', 'value', jsonb_build_object(
      'messaging_product', 'whatsapp',
      'metadata', jsonb_build_object('display_phone_number', '15550001212', 'phone_number_id', '109990000000012'),
      'contacts', jsonb_build_array(jsonb_build_object('profile', jsonb_build_object('name', 'Tess T'), 'wa_id', '447400300001')),
      'messages', jsonb_build_array(
        jsonb_build_object('from', '447400300001', 'id', 'wamid.ST_IN_3', 'timestamp', '1795000002', 'type', 'image',
                           'image', jsonb_build_object('id', '2001', 'mime_type', 'image/jpeg', 'sha256', 'eA==', 'caption', 'Meter'))),
      'statuses', jsonb_build_array(
        jsonb_build_object('id', 'wamid.ST_B1', 'status', 'delivered', 'timestamp', '1795000003', 'recipient_id', '447400300001'),
        jsonb_build_object('id', 'wamid.ST_B_UNKNOWN', 'status', 'read', 'timestamp', '1795000004', 'recipient_id', '447400300001')),
      'errors', jsonb_build_array(
        jsonb_build_object('code', 131000, 'title', 'Something went wrong', 'message', 'Something went wrong',
                           'error_data', jsonb_build_object('details', 'Unknown error'))))))))));

select set_config('tests.messages_before', (select count(*) from public.whatsapp_messages)::text, true);
select tests.authenticate_as_service_role();
create temporary table ingested on commit drop as
  select public.ingest_whatsapp_webhook(p.body) as result from tests.payloads p where p.name = 'batch';
select results_eq(
  $$ select e ->> 'wamid', e ->> 'routing_status', (e ->> 'duplicate')::boolean
     from ingested, jsonb_array_elements(result -> 'messages') with ordinality as x (e, n) order by n $$,
  $$ values ('wamid.ST_IN_1', 'delivered', false), ('wamid.ST_IN_2', 'unknown_sender', false), ('wamid.ST_IN_3', 'delivered', false) $$,
  'every message of every entry and change is routed, in order');
select results_eq(
  $$ select m.wamid, m.contact_name, m.type, coalesce(m.body, m.media_caption), m.sent_at, m.to_phone
     from public.whatsapp_messages m where m.wamid like 'wamid.ST_IN_%' order by m.wamid $$,
  $$ values ('wamid.ST_IN_1', 'Tess T', 'text', 'First of the batch', to_timestamp(1795000000), '15550001212'),
            ('wamid.ST_IN_2', 'Stranger', 'text', 'Who am I?', to_timestamp(1795000001), '15550001212'),
            ('wamid.ST_IN_3', 'Tess T', 'image', 'Meter', to_timestamp(1795000002), '15550001212') $$,
  'each message is stored with its own sender''s contact name and the business number it was sent to');
select results_eq(
  $$ select e ->> 'wamid', (e ->> 'applied')::boolean, (e ->> 'pending')::boolean
     from ingested, jsonb_array_elements(result -> 'statuses') with ordinality as x (e, n) order by n $$,
  $$ values ('wamid.ST_B1', true, false), ('wamid.ST_B_UNKNOWN', false, true) $$,
  'every status is applied, or kept pending when its wamid is unknown');
select results_eq($$ select status, delivered_at from tests.st('wamid.ST_B1') $$,
  $$ values ('delivered', to_timestamp(1795000003)) $$, 'the status reached the message, with Meta''s timestamp');
select results_eq(
  $$ select result -> 'errors', (result ->> 'skipped_changes')::int from ingested $$,
  $$ values ('[{"code": 131000, "title": "Something went wrong"}]'::jsonb, 1) $$,
  'value.errors are summarised and non-messages fields are skipped');
reset role;
select results_eq($$ select phone_number_id, code, title, details -> 'error_data' ->> 'details' from private.webhook_errors where code = 131000 $$,
  $$ values ('109990000000012', 131000, 'Something went wrong', 'Unknown error') $$,
  'value.errors are recorded for operators');
select results_eq(
  $$ select c.unread_count, c.last_message_preview from public.whatsapp_conversations c
     where c.landlord_id = tests.get_supabase_uid('st_lena') and c.tenant_phone = '447400300001' $$,
  $$ values (2, 'Meter') $$, 'the landlord''s conversation counts both messages');

-- The same webhook again (Meta retries): every message is a duplicate, nothing added.
select set_config('tests.messages_after_batch', (select count(*) from public.whatsapp_messages)::text, true);
select set_config('tests.b1_ctid', (select ctid from public.whatsapp_messages where wamid = 'wamid.ST_B1')::text, true);
select tests.authenticate_as_service_role();
select results_eq(
  $$ select bool_and((e ->> 'duplicate')::boolean), count(*)::int
     from tests.payloads p, jsonb_array_elements(public.ingest_whatsapp_webhook(p.body) -> 'messages') e where p.name = 'batch' $$,
  $$ values (true, 3) $$, 'a redelivered webhook reports every message as a duplicate');
reset role;
select results_eq(
  $$ select (select count(*) from public.whatsapp_messages)::text,
            (select c.unread_count from public.whatsapp_conversations c
             where c.landlord_id = tests.get_supabase_uid('st_lena') and c.tenant_phone = '447400300001') $$,
  $$ values (current_setting('tests.messages_after_batch'), 2) $$, 'and writes no message and no unread');
select results_eq(
  $$ select (select ctid from public.whatsapp_messages where wamid = 'wamid.ST_B1')::text,
            (select count(*)::int from private.webhook_errors where code = 131000),
            (select count(*)::int from private.pending_message_statuses where wamid = 'wamid.ST_B_UNKNOWN') $$,
  $$ values (current_setting('tests.b1_ctid'), 1, 1) $$,
  'nor rewrites the status it had applied, nor records its error or pending status twice');

-- biz_opaque_callback_data attaches the wamid to a message the sender never saw accepted.
select tests.authenticate_as_service_role();
select public.ingest_whatsapp_webhook(jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
  jsonb_build_object('id', '102290129340001', 'changes', jsonb_build_array(jsonb_build_object('field', 'messages', 'value',
    jsonb_build_object('metadata', jsonb_build_object('phone_number_id', '109990000000012'), 'statuses', jsonb_build_array(
      jsonb_build_object('id', 'wamid.ST_CB', 'status', 'delivered', 'timestamp', '1795000010', 'recipient_id', '447400300001')))))))));
select public.ingest_whatsapp_webhook(jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
  jsonb_build_object('id', '102290129340001', 'changes', jsonb_build_array(jsonb_build_object('field', 'messages', 'value',
    jsonb_build_object('metadata', jsonb_build_object('phone_number_id', '109990000000012'), 'statuses', jsonb_build_array(
      jsonb_build_object('id', 'wamid.ST_CB', 'status', 'sent', 'timestamp', '1795000009', 'recipient_id', '447400300001',
                         'biz_opaque_callback_data', current_setting('tests.callback_id'))))))))));
reset role;
select results_eq(
  $$ select m.wamid, m.status, m.delivered_at, tests.routing_metadata(m.id) ->> 'wamid_from'
     from public.whatsapp_messages m where m.id = current_setting('tests.callback_id')::uuid $$,
  $$ values ('wamid.ST_CB', 'delivered', to_timestamp(1795000010), 'status_callback') $$,
  'a status naming our message in biz_opaque_callback_data attaches its wamid and applies the statuses that waited');
select is_empty($$ select 1 from private.pending_message_statuses where wamid = 'wamid.ST_CB' $$, 'nothing is left pending for it');
select tests.authenticate_as_service_role();
select results_eq(
  $$ select public.ingest_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
       "value": {"metadata": {"phone_number_id": "109990000000012"}, "errors": [{"code": "X1", "title": "Odd code"}]}}]}]}') -> 'errors' $$,
  $$ values ('[{"code": null, "title": "Odd code"}]'::jsonb) $$,
  'a webhook error whose code is not a number is still recorded (no cast error refusing the webhook)');
reset role;
select ok(not private.attach_wamid_from_callback('not-a-uuid', 'wamid.ST_X'), 'callback data that is not our id is ignored');
select ok(not private.attach_wamid_from_callback(current_setting('tests.callback_id'), 'wamid.ST_OTHER'),
  'a message that has its wamid already is not given another');

-- Refused webhooks write nothing ----------------------------------------------------------------
insert into tests.payloads values
('other_number', '{"object": "whatsapp_business_account", "entry": [
   {"id": "1", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "109990000000012"},
     "messages": [{"from": "447400300001", "id": "wamid.ST_REFUSED_1", "timestamp": "1795000020", "type": "text", "text": {"body": "ok"}}]}}]},
   {"id": "2", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "106540352242922"},
     "messages": [{"from": "447400300001", "id": "wamid.ST_REFUSED_2", "timestamp": "1795000021", "type": "text", "text": {"body": "for another number"}}]}}]}]}'),
('no_metadata', '{"object": "whatsapp_business_account", "entry": [
   {"id": "1", "changes": [{"field": "messages", "value": {
     "messages": [{"from": "447400300001", "id": "wamid.ST_REFUSED_3", "timestamp": "1795000022", "type": "text", "text": {"body": "no metadata"}}]}}]}]}'),
('page', '{"object": "page", "entry": [
   {"id": "1", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "109990000000012"},
     "messages": [{"from": "447400300001", "id": "wamid.ST_REFUSED_4", "timestamp": "1795000023", "type": "text", "text": {"body": "hi"}}]}}]}]}'),
('bad_message', '{"object": "whatsapp_business_account", "entry": [
   {"id": "1", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "109990000000012"},
     "messages": [{"from": "447400300001", "id": "wamid.ST_REFUSED_5", "timestamp": "1795000024", "type": "text", "text": {"body": "fine"}},
                  {"from": "447400300001", "timestamp": "1795000025", "type": "text", "text": {"body": "no id"}}]}}]}]}'),
('bad_status_time', '{"object": "whatsapp_business_account", "entry": [
   {"id": "1", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "109990000000012"},
     "messages": [{"from": "447400300001", "id": "wamid.ST_REFUSED_6", "timestamp": "1795000026", "type": "text", "text": {"body": "STOP"}}],
     "statuses": [{"id": "wamid.ST_2", "status": "failed", "timestamp": "soon", "errors": [{"code": 1}]}]}}]}]}');

select set_config('tests.dead_before', (select count(*) from private.webhook_dead_letters)::text, true);
select tests.authenticate_as_service_role();
create temp table dead_batches on commit drop as
  select p.name, public.ingest_whatsapp_webhook(p.body) as r from tests.payloads p
  where p.name in ('other_number', 'no_metadata', 'page', 'bad_message', 'bad_status_time');
insert into dead_batches values
  ('null', public.ingest_whatsapp_webhook(null)), ('array', public.ingest_whatsapp_webhook('[]')),
  ('no_entry', public.ingest_whatsapp_webhook('{"object": "whatsapp_business_account"}')),
  ('no_changes', public.ingest_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}'));
reset role;
select results_eq($$ select name, (r ->> 'dead_letters')::int, jsonb_array_length(r -> 'messages') from dead_batches order by name $$,
  $$ values ('array', 1, 0), ('bad_message', 1, 1), ('bad_status_time', 1, 1), ('no_changes', 1, 0), ('no_entry', 1, 0),
            ('no_metadata', 1, 0), ('null', 1, 0), ('other_number', 1, 1), ('page', 1, 0) $$,
  'every unusable item is counted as a dead letter, and the usable ones next to it are stored');
select results_eq($$ select wamid, routing_status from public.whatsapp_messages where wamid like 'wamid.ST_REFUSED%' order by wamid $$,
  $$ values ('wamid.ST_REFUSED_1', 'delivered'), ('wamid.ST_REFUSED_5', 'delivered'), ('wamid.ST_REFUSED_6', 'delivered') $$,
  'a bad item never costs its neighbours: the good message of each batch is routed');
select results_eq($$ select source, error_code, item ->> 'id', item -> 'metadata' ->> 'phone_number_id'
                     from private.webhook_dead_letters d where d.id > current_setting('tests.dead_before')::bigint
                       and d.source in ('message', 'status') order by d.source $$,
  $$ values ('message', '22023', null, null), ('status', '22023', 'wamid.ST_2', null) $$,
  'the bad message and the bad status are kept whole, with their SQLSTATE');
select results_eq($$ select count(*)::int from private.webhook_dead_letters d where d.id > current_setting('tests.dead_before')::bigint
                       and d.source = 'change' and d.item -> 'value' -> 'metadata' ->> 'phone_number_id' = '106540352242922' $$,
  $$ values (1) $$, 'a change for another phone number is kept whole too');
select is((select d.item from private.webhook_dead_letters d where d.source = 'message' and d.id > current_setting('tests.dead_before')::bigint),
  (select p.body -> 'entry' -> 0 -> 'changes' -> 0 -> 'value' -> 'messages' -> 1 from tests.payloads p where p.name = 'bad_message'),
  'nothing of the bad item is lost: it is stored exactly as it came');
select is((select count(*) from private.webhook_dead_letters d where d.id > current_setting('tests.dead_before')::bigint)::int, 9,
  'nine dead letters in all');
reset role;
select public.configure_whatsapp('{"phone_number_id": null}');
select tests.authenticate_as_service_role();
select is(tests.refusal_of($$ select public.ingest_whatsapp_webhook(body) from tests.payloads where name = 'other_number' $$),
  '55000 not_configured', 'with no central number configured, every webhook is refused (configuring it fixes the retry)');
reset role;
select public.configure_whatsapp('{"phone_number_id": "109990000000012"}');

-- Implausible timestamps are replaced by the receipt time, the original kept ----------------------
select tests.authenticate_as_service_role();
select public.ingest_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
  "value": {"metadata": {"phone_number_id": "109990000000012"},
            "messages": [{"from": "447400300001", "id": "wamid.ST_FUTURE", "timestamp": "999999999999", "type": "text", "text": {"body": "from the future"}},
                         {"from": "447400300001", "id": "wamid.ST_ANCIENT", "timestamp": "1", "type": "text", "text": {"body": "from 1970"}}]}}]}]}');
reset role;
select results_eq($$ select wamid, sent_at = now(), tests.routing_metadata(id) ->> 'original_timestamp' from public.whatsapp_messages
                     where wamid in ('wamid.ST_FUTURE', 'wamid.ST_ANCIENT') order by wamid $$,
  $$ values ('wamid.ST_ANCIENT', true, '1'), ('wamid.ST_FUTURE', true, '999999999999') $$,
  'a timestamp outside [now - 30 days, now + 1 hour] becomes the receipt time, the original kept in the details');
select ok((select last_inbound_at <= now() from public.whatsapp_conversations
           where tenant_phone = '447400300001' and landlord_id = tests.get_supabase_uid('st_lena')),
  'so no conversation''s window is held open by a message from the future');
select is(private.webhook_time(extract(epoch from now() - interval '10 minutes')::bigint::text),
  to_timestamp(extract(epoch from now() - interval '10 minutes')::bigint), 'a plausible timestamp is kept as Meta sent it');

-- configure_whatsapp -----------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select results_eq(
  $$ select s ->> 'phone_number_id', s ->> 'default_country', s ->> 'picker_text'
     from public.configure_whatsapp('{"picker_text": "Please reply to your landlord''s message.", "default_country": "gb"}') s $$,
  $$ values ('109990000000012', 'GB', 'Please reply to your landlord''s message.') $$,
  'service_role configures the central number; unnamed settings are kept');
select throws_ok($$ select public.configure_whatsapp('{"phone_number": "1"}') $$, '22023', 'unknown setting ''phone_number''',
  'an unknown setting is refused');
select throws_ok($$ select public.configure_whatsapp('{"default_country": "XX"}') $$, '22023', null, 'an unsupported country is refused');
select is(tests.refusal_of($$ select public.configure_whatsapp('[]') $$), '22023 invalid_value', 'settings must be an object');
reset role;

-- anon and authenticated: no service-role RPC, no private table -----------------------------------
select tests.authenticate_as('st_lena');
select throws_ok($$ select public.route_inbound_message('{"id": "wamid.ST_EVIL", "from": "447400300001", "type": "text", "text": {"body": "x"}}') $$,
  '42501', null, 'authenticated cannot execute route_inbound_message');
select throws_ok($$ select public.ingest_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": []}') $$,
  '42501', null, 'authenticated cannot execute ingest_whatsapp_webhook');
select throws_ok($$ select public.record_message_status('wamid.ST_1', 'read', now()) $$,
  '42501', null, 'authenticated cannot execute record_message_status');
select throws_ok($$ select public.configure_whatsapp('{"phone_number_id": "1"}') $$,
  '42501', null, 'authenticated cannot execute configure_whatsapp');
select throws_ok($$ select private.queue_system_reply('447400300001', 'spam', 'courtesy') $$,
  '42501', null, 'authenticated cannot queue ZenRent''s own replies');
select throws_ok($$ select private.routing_sync_pair('447400300001', gen_random_uuid()) $$,
  '42501', null, 'authenticated cannot call the routing table''s security definer helpers');
select throws_ok($$ select * from private.phone_preferences $$, '42501', null, 'authenticated cannot read phone_preferences');
select throws_ok($$ select * from private.whatsapp_settings $$, '42501', null, 'authenticated cannot read whatsapp_settings');
select throws_ok($$ select * from private.pending_message_statuses $$, '42501', null, 'authenticated cannot read pending_message_statuses');
select throws_ok($$ select * from private.webhook_errors $$, '42501', null, 'authenticated cannot read webhook_errors');
select throws_ok($$ select * from private.tenant_landlord_routing_source $$, '42501', null, 'authenticated cannot read the routing view');
select tests.clear_authentication();
select throws_ok($$ select public.route_inbound_message('{"id": "wamid.ST_EVIL", "from": "447400300001", "type": "text", "text": {"body": "x"}}') $$,
  '42501', null, 'anon cannot execute route_inbound_message');
select throws_ok($$ select public.ingest_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": []}') $$,
  '42501', null, 'anon cannot execute ingest_whatsapp_webhook');
select throws_ok($$ select public.record_message_status('wamid.ST_1', 'read', now()) $$,
  '42501', null, 'anon cannot execute record_message_status');
select throws_ok($$ select public.configure_whatsapp('{"phone_number_id": "1"}') $$,
  '42501', null, 'anon cannot execute configure_whatsapp');
select throws_ok($$ select * from private.phone_preferences $$, '42501', null, 'anon cannot read phone_preferences');
select throws_ok($$ select * from private.whatsapp_settings $$, '42501', null, 'anon cannot read whatsapp_settings');
select throws_ok($$ select * from private.pending_message_statuses $$, '42501', null, 'anon cannot read pending_message_statuses');
select throws_ok($$ select * from private.webhook_errors $$, '42501', null, 'anon cannot read webhook_errors');
reset role;
select is((select s.phone_number_id from private.whatsapp_settings s), '109990000000012', 'the configuration was not changed by them');
select is_empty(
  $$ select f::text from unnest(array[
       'private.routing_sync_pair(text, uuid)', 'private.routing_candidates(text)',
       'private.queue_system_reply(text, text, text)', 'private.is_opted_out(text)', 'private.parse_message_content(jsonb)',
       'private.status_rank(text)', 'private.apply_message_status(text, text, timestamptz, jsonb)',
       'private.apply_pending_statuses(text)', 'private.attach_wamid_from_callback(text, text)']::regprocedure[]) f
     where has_function_privilege('anon', f, 'execute') or has_function_privilege('authenticated', f, 'execute') $$,
  'no private helper of the routing core is executable by anon or authenticated');

select * from finish();
rollback;
