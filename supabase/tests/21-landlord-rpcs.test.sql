-- Landlord RPCs (issue 5): set_whatsapp_opt_in, send_whatsapp_message (every refusal rule),
-- send_whatsapp_template, start_whatsapp_conversation, mark_conversation_read,
-- set_conversation_status, landlord notifications, and the outbound queue the workers drain
-- (claim_outbound_messages, complete_outbound_message, reconcile_stuck_outbound).
begin;
select plan(156);

-- Setup (postgres) ----------------------------------------------------------------------------
select tests.register_template('rent_reminder', 'en', 1);
select tests.register_template('rent_reminder', 'en_GB', 3);
select tests.register_template('hello_tenant', 'en', 1);
select tests.register_template(repeat('a', 512), 'pt_BR', 1);
select tests.register_template('parking_update', 'en_GB', 2);
select tests.create_supabase_user('rpc_alice');
select tests.create_supabase_user('rpc_bob');
select tests.create_supabase_user('rpc_carl');
select tests.create_supabase_user('rpc_noprofile');

insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at) values
  (tests.get_supabase_uid('rpc_alice'), 'Alice Tester', true, now()),
  (tests.get_supabase_uid('rpc_bob'), 'Bob Tester', true, now()),
  (tests.get_supabase_uid('rpc_carl'), 'Carl Newman', false, null);

select tests.link('rpc_alice', '447700900710');   -- the tenants confirmed these landlords (40- shows how)

insert into public.properties (id, user_id, address) values
  ('a1000000-0000-4000-8000-000000000001', tests.get_supabase_uid('rpc_alice'), '1 Alice Avenue'),
  ('a1000000-0000-4000-8000-000000000011', tests.get_supabase_uid('rpc_bob'), '2 Bob Boulevard'),
  ('a1000000-0000-4000-8000-000000000021', tests.get_supabase_uid('rpc_carl'), '3 Carl Crescent');

-- Tenant ids end in their phone's last three digits.
insert into public.tenants (id, user_id, name, phone) values
  ('b1000000-0000-4000-8000-000000000701', tests.get_supabase_uid('rpc_alice'), 'Tom One', '07700 900701'),
  ('b1000000-0000-4000-8000-000000000702', tests.get_supabase_uid('rpc_alice'), 'Sue Shared', '07700 900702'),
  ('b1000000-0000-4000-8000-000000000703', tests.get_supabase_uid('rpc_alice'), 'Pat Pending', '07700 900703'),
  ('b1000000-0000-4000-8000-000000000704', tests.get_supabase_uid('rpc_alice'), 'Noah Nophone', null),
  ('b1000000-0000-4000-8000-000000000705', tests.get_supabase_uid('rpc_alice'), 'Stella Stop', '07700 900705'),
  ('b1000000-0000-4000-8000-000000000706', tests.get_supabase_uid('rpc_alice'), 'Olga Old', '07700 900706'),
  ('b1000000-0000-4000-8000-000000000708', tests.get_supabase_uid('rpc_alice'), 'Bill Blocked', '07700 900708'),
  ('b1000000-0000-4000-8000-000000000709', tests.get_supabase_uid('rpc_alice'), 'Wendy Window', '07700 900709'),
  ('b1000000-0000-4000-8000-000000000710', tests.get_supabase_uid('rpc_alice'), 'Nina Never', '07700 900710'),
  ('b1000000-0000-4000-8000-0000000007b2', tests.get_supabase_uid('rpc_bob'), 'Susan Shared', '+44 7700 900702'),
  ('b1000000-0000-4000-8000-000000000707', tests.get_supabase_uid('rpc_bob'), 'Ben Bobs', '+44 7700 900707'),
  ('b1000000-0000-4000-8000-000000000711', tests.get_supabase_uid('rpc_carl'), 'Cora Carls', '+44 7700 900711');

insert into public.leases (tenant_id, property_id, status, start_date)
select t.id, case t.user_id when tests.get_supabase_uid('rpc_alice') then 'a1000000-0000-4000-8000-000000000001'::uuid
                            when tests.get_supabase_uid('rpc_bob') then 'a1000000-0000-4000-8000-000000000011'::uuid
                            else 'a1000000-0000-4000-8000-000000000021'::uuid end,
       case when t.name = 'Pat Pending' then 'pending' else 'active' end, '2025-01-01'
from public.tenants t where t.id::text like 'b1000000-%';

-- Tenants write in: now, 23 hours ago (window still open) and two days ago (window closed).
select tests.route_text('wamid.rpc.701a', '447700900701', 'The sink leaks');
select tests.route_text('wamid.rpc.705a', '447700900705', 'Hi');
select tests.route_text('wamid.rpc.706a', '447700900706', 'Old news', 2 * 86400);
select tests.route_text('wamid.rpc.708a', '447700900708', 'Hello');
select tests.route_text('wamid.rpc.709a', '447700900709', 'Yesterday', 23 * 3600);
select tests.route_text('wamid.rpc.707a', '447700900707', 'Hi Bob');

-- set_whatsapp_opt_in ------------------------------------------------------------------------
select tests.authenticate_as('rpc_carl');
select is(public.set_whatsapp_opt_in(true) ->> 'whatsapp_enabled', 'true', 'set_whatsapp_opt_in(true) opts the landlord in');
select results_eq($$ select whatsapp_enabled, whatsapp_opted_in_at = now(), whatsapp_notifications_enabled from public.user_profiles $$,
  $$ values (true, true, true) $$, 'enabling sets whatsapp_opted_in_at (notifications untouched)');
reset role;
select is((select bool_and((c ->> 'enabled')::boolean) from jsonb_array_elements(private.routing_candidates('447700900711')) c
            where (c ->> 'landlord_id')::uuid = tests.get_supabase_uid('rpc_carl')),
  true, 'routing sees the opt-in in the same transaction');
update public.user_profiles set whatsapp_opted_in_at = '2026-01-01T00:00:00Z' where id = tests.get_supabase_uid('rpc_carl');
select tests.authenticate_as('rpc_carl');
select is(public.set_whatsapp_opt_in(true) ->> 'whatsapp_opted_in_at', '2026-01-01T00:00:00+00:00',
  'opting in again while opted in keeps the original whatsapp_opted_in_at');
select is(public.set_whatsapp_opt_in(true, false) ->> 'whatsapp_notifications_enabled', 'false', 'notifications can be turned off');
select is(public.set_whatsapp_opt_in(true) ->> 'whatsapp_notifications_enabled', 'false', 'notifications_enabled null keeps the setting');
select is(public.set_whatsapp_opt_in(true, true) ->> 'whatsapp_notifications_enabled', 'true', 'notifications can be turned on');
select throws_ok($$ select public.set_whatsapp_opt_in(null) $$, '22023', null, 'enabled null is refused (22023)');
reset role;
select tests.authenticate_as('rpc_noprofile');
select throws_ok($$ select public.set_whatsapp_opt_in(true) $$, '42501', null, 'a user without a profile cannot opt in (42501)');
reset role;

select is(tests.route_text('wamid.rpc.711a', '447700900711', 'Hi Carl') ->> 'routing_status', 'delivered',
  'once opted in, the landlord''s tenant is delivered');
select tests.authenticate_as('rpc_carl');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_carl', '447700900711'), 'Queued before opting out'), null,
  'an opted-in landlord queues a reply');
select is(public.set_whatsapp_opt_in(false) ->> 'cancelled_messages', '1', 'opting out cancels the landlord''s queued messages');
select results_eq($$ select whatsapp_enabled, whatsapp_opted_in_at from public.user_profiles $$,
  $$ values (false, '2026-01-01T00:00:00Z'::timestamptz) $$, 'opting out keeps whatsapp_opted_in_at');
select results_eq($$ select status, error_title from public.whatsapp_messages where body = 'Queued before opting out' $$,
  $$ values ('failed', 'cancelled: the landlord turned WhatsApp off') $$, 'the queued reply is failed as cancelled');
reset role;
select is((select bool_or((c ->> 'enabled')::boolean) from jsonb_array_elements(private.routing_candidates('447700900711')) c
            where (c ->> 'landlord_id')::uuid = tests.get_supabase_uid('rpc_carl')),
  false, 'routing sees the opt-out in the same transaction');
select results_eq($$ select r ->> 'routing_status', r ->> 'landlord_id' from tests.route_text('wamid.rpc.711b', '447700900711', 'Still there?') r $$,
  $$ values ('landlord_disabled', null::text) $$, 'after opting out, the next inbound message is held as landlord_disabled');
select tests.authenticate_as('rpc_carl');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_carl', '447700900711'), 'hi')), '55000 landlord_not_opted_in', 'send_whatsapp_message: landlord not opted in (55000), even inside the window');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_carl', '447700900711'), 'rent_reminder', 'en')), '55000 landlord_not_opted_in', 'send_whatsapp_template: landlord not opted in (55000)');
select is(tests.refusal_of($$ select public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000711') $$), '55000 landlord_not_opted_in', 'start_whatsapp_conversation: landlord not opted in (55000)');
select results_eq($$ select wamid from public.whatsapp_messages where direction = 'incoming' $$, array['wamid.rpc.711a'],
  'the landlord does not see the message held while opted out');
select is((public.set_whatsapp_opt_in(true) ->> 'whatsapp_opted_in_at')::timestamptz, now(),
  'opting in again after opting out sets a new whatsapp_opted_in_at');
reset role;

-- send_whatsapp_message ----------------------------------------------------------------------
select tests.authenticate_as('rpc_alice');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_alice', '447700900701'), 'The plumber comes at 10.'), null,
  'send_whatsapp_message queues a reply in an open window and returns its id');
select results_eq($$ select body, landlord_signature, status, direction, routing_status, outbound_kind, type, to_phone, tenant_phone,
                            conversation_id, tenant_id, is_from_tenant
                     from public.whatsapp_messages where body = 'The plumber comes at 10.' $$,
  format($f$ values ('The plumber comes at 10.', 'From Alice Tester via ZenRent:', 'queued', 'outgoing', 'outbound', 'text', 'text',
                     '447700900701', '447700900701', %L::uuid, 'b1000000-0000-4000-8000-000000000701'::uuid, false) $f$,
         tests.conversation_id('rpc_alice', '447700900701')),
  'the queued row keeps the body without the prefix and the signature apart');
select is((select landlord_signature from public.whatsapp_messages where body = 'The plumber comes at 10.'),
  'From Alice Tester via ZenRent:', 'landlord_signature is exactly "From <full_name> via ZenRent:"');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_bob', '447700900707'), 'hi')), 'P0002 not_found', 'refused: another landlord''s conversation (P0002, as not found)');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', gen_random_uuid(), 'hi')), 'P0002 not_found', 'refused: a conversation that does not exist (P0002)');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900701'), '')), '22023 empty_body', 'refused: empty body (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900701'), e'  \n\t ')), '22023 empty_body', 'refused: whitespace-only body (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, null)', tests.conversation_id('rpc_alice', '447700900701'))), '22023 empty_body', 'refused: null body (22023)');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_alice', '447700900701'),
  repeat('x', 4096 - length('From Alice Tester via ZenRent:') - 1)), null,
  'accepted: exactly 4096 characters including the prefix and newline');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900701'),
  repeat('y', 4096 - length('From Alice Tester via ZenRent:')))), '22023 message_too_long', 'refused: 4097 characters including the prefix (22023)');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_alice', '447700900709'), 'Within 23 hours'), null,
  'accepted: the tenant wrote 23 hours ago (window open)');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'Too late')), '55000 window_closed', 'refused: the tenant last wrote two days ago (55000)');
select matches(tests.error_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'Too late')),
  '^55000: .*hint: .*template', 'the closed-window refusal hints at sending a template');
select isnt(public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000710'), null,
  'a conversation with a tenant who never wrote can be started');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900710'), 'First contact')), '55000 window_closed', 'refused: the tenant never wrote (55000)');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_alice', '447700900708'), 'blocked'),
  'the landlord blocks a conversation');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900708'), 'hi')), '55000 conversation_blocked', 'refused: the conversation is blocked (55000)');
reset role;
select is(tests.route_text('wamid.rpc.705stop', '447700900705', ' stop ') ->> 'routing_status', 'delivered',
  'the tenant''s STOP is filed in the conversation');
select tests.authenticate_as('rpc_alice');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900705'), 'hi')), '55000 tenant_opted_out', 'refused: the tenant opted out with STOP (55000)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_alice', '447700900705'), 'rent_reminder', 'en')), '55000 tenant_opted_out', 'templates are refused after STOP too (55000)');
reset role;
select is(tests.route_text('wamid.rpc.705start', '447700900705', 'START') ->> 'routing_status', 'delivered',
  'the tenant''s START is filed in the conversation');
select tests.authenticate_as('rpc_alice');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_alice', '447700900705'), 'Welcome back'), null,
  'accepted again after the tenant sends START');
-- More replies for the queue tests below.
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_alice', '447700900701'), 'q' || n), null,
  format('queue test reply q%s queued', n)) from generate_series(1, 7) n;
reset role;
-- The tenant opts out again before a worker picks up "Welcome back".
select tests.route_text('wamid.rpc.705stop2', '447700900705', 'STOP');

-- send_whatsapp_template ---------------------------------------------------------------------
select tests.authenticate_as('rpc_alice');
select isnt(public.send_whatsapp_template(tests.conversation_id('rpc_alice', '447700900706'), 'rent_reminder', 'en_GB', '["Flat 6", "Friday"]'), null,
  'send_whatsapp_template is allowed outside the 24 h window');
select results_eq($$ select type, outbound_kind, status, body, template ->> 'name', template -> 'language' ->> 'code'
                     from public.whatsapp_messages where conversation_id = tests.conversation_id('rpc_alice', '447700900706') and direction = 'outgoing' $$,
  $$ values ('template', 'template', 'queued', '[template rent_reminder] Flat 6 | Friday', 'rent_reminder', 'en_GB') $$,
  'the template is queued with its name and language');
select is((select array_agg(p ->> 'text' order by o) from public.whatsapp_messages m,
           jsonb_array_elements(m.template -> 'components' -> 0 -> 'parameters') with ordinality as x (p, o)
           where m.conversation_id = tests.conversation_id('rpc_alice', '447700900706') and m.direction = 'outgoing'),
  array['Alice Tester', 'Flat 6', 'Friday'], 'the landlord''s name is the first body parameter');
select isnt(public.send_whatsapp_template(tests.conversation_id('rpc_alice', '447700900710'), 'hello_tenant', 'en'), null,
  'a template without parameters is queued');
select is((select m.template -> 'components' -> 0 -> 'parameters' from public.whatsapp_messages m where m.template ->> 'name' = 'hello_tenant'),
  '[{"type": "text", "text": "Alice Tester"}]'::jsonb, 'without parameters the landlord''s name is the only one');
select isnt(public.send_whatsapp_template(tests.conversation_id('rpc_alice', '447700900710'), repeat('a', 512), 'pt_BR'), null,
  'a 512-character template name is accepted');
select throws_ok(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_alice', '447700900706'), repeat('a', 513), 'en'),
  '22023', null, 'refused: template name over 512 characters (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'Rent Reminder', 'en')),
  '22023 template_not_registered', 'refused: template name with capitals and spaces (22023)');
select throws_ok(format('select public.send_whatsapp_template(%L, null, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'en'),
  '22023', null, 'refused: null template name (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'rent_reminder', 'english')),
  '22023 template_not_registered', 'refused: bad language code (22023)');
select throws_ok(format('select public.send_whatsapp_template(%L, %L, null)', tests.conversation_id('rpc_alice', '447700900706'), 'rent_reminder'),
  '22023', null, 'refused: null language (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'rent_reminder', 'en', '{"a": "b"}')), '22023 invalid_value', 'refused: parameters not an array (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L, %L)', tests.conversation_id('rpc_alice', '447700900706'), 'rent_reminder', 'en', '["ok", 3]')), '22023 invalid_value', 'refused: a non-string parameter (22023)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_bob', '447700900707'), 'rent_reminder', 'en')), 'P0002 not_found', 'refused: another landlord''s conversation (P0002)');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('rpc_alice', '447700900708'), 'rent_reminder', 'en')), '55000 conversation_blocked', 'refused: blocked conversation (55000)');
reset role;

-- The text a worker sends --------------------------------------------------------------------
select tests.authenticate_as_service_role();
create temp table claimed on commit drop as
  select c.*, c.payload -> 'text' ->> 'body' as text_body, c.payload -> 'template' as template from public.claim_outbound_messages(1000) c;
reset role;
select is((select text_body from claimed where id = tests.message_id('The plumber comes at 10.')),
  e'From Alice Tester via ZenRent:\nThe plumber comes at 10.', 'the claimed text is the signature, a newline and the body');
select ok((select bool_and(starts_with(c.text_body, e'From Alice Tester via ZenRent:\n')) from claimed c
           join public.whatsapp_messages m on m.id = c.id where m.landlord_id = tests.get_supabase_uid('rpc_alice') and c.kind = 'text'),
  'every claimed reply of the landlord starts with exactly "From Alice Tester via ZenRent:" and a newline');
select is((select length(c.text_body) from claimed c join public.whatsapp_messages m on m.id = c.id where m.body ~ '^x+$'), 4096,
  'the message at the limit goes out at exactly 4096 characters');
select results_eq($$ select to_phone, kind, attempt_count from claimed where id = tests.message_id('The plumber comes at 10.') $$,
  $$ values ('447700900701', 'text', 1) $$, 'the claim hands out phone, kind and attempt count');
select results_eq($$ select kind, text_body, template ->> 'name' from claimed c
                     where c.id = (select m.id from public.whatsapp_messages m where m.body = '[template rent_reminder] Flat 6 | Friday') $$,
  $$ values ('template', null::text, 'rent_reminder') $$, 'a template is handed out as a template, without text');
select results_eq($$ select payload ->> 'messaging_product', payload ->> 'recipient_type', payload ->> 'to', payload ->> 'type',
                            payload -> 'text' ->> 'preview_url', payload ->> 'biz_opaque_callback_data'
                     from claimed where id = tests.message_id('The plumber comes at 10.') $$,
  $$ select 'whatsapp', 'individual', '447700900701', 'text', 'false', tests.message_id('The plumber comes at 10.')::text $$,
  'the payload is the exact body Meta documents, naming the message in biz_opaque_callback_data');
select is((select count(*) from claimed c join public.whatsapp_messages m on m.id = c.id where m.status <> 'sending'), 0::bigint,
  'every claimed message is now sending');
select results_eq($$ select status, error_title from public.whatsapp_messages where body = 'Welcome back' $$,
  $$ values ('failed', 'cancelled: the tenant opted out (STOP)') $$,
  'a reply queued before the tenant sent STOP again is cancelled at claim time, not sent');
select is_empty($$ select 1 from claimed where id = tests.message_id('Welcome back') $$, 'and it is not handed to the worker');
select tests.authenticate_as_service_role();
select is_empty($$ select 1 from public.claim_outbound_messages(1000) $$, 'nothing is handed out twice');
select throws_ok($$ select * from public.claim_outbound_messages(0) $$, '22023', null, 'claim batch_size must be positive (22023)');
reset role;

-- start_whatsapp_conversation ----------------------------------------------------------------
select tests.authenticate_as('rpc_alice');
select results_eq($$ select landlord_id = auth.uid(), tenant_id, tenant_phone, property_id, status, unread_count
                     from public.whatsapp_conversations where tenant_phone = '447700900710' $$,
  $$ values (true, 'b1000000-0000-4000-8000-000000000710'::uuid, '447700900710', 'a1000000-0000-4000-8000-000000000001'::uuid, 'active', 0) $$,
  'start_whatsapp_conversation creates the conversation for the landlord''s tenant with an active lease');
select is(public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000710'), tests.conversation_id('rpc_alice', '447700900710'),
  'starting it again returns the same conversation');
select is(public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000701'), tests.conversation_id('rpc_alice', '447700900701'),
  'starting one that routing already opened returns that conversation');
select is(tests.refusal_of($$ select public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000707') $$), 'P0002 not_found', 'refused: another landlord''s tenant (P0002)');
select is(tests.refusal_of(format('select public.start_whatsapp_conversation(%L)', gen_random_uuid())), 'P0002 not_found', 'refused: a tenant that does not exist (P0002)');
select is(tests.refusal_of($$ select public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000703') $$), '55000 no_active_lease', 'refused: the tenant has no active lease (55000)');
select is(tests.refusal_of($$ select public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000704') $$), '22023 invalid_phone', 'refused: the tenant has no phone (22023)');

-- mark_conversation_read ---------------------------------------------------------------------
select is((select unread_count from public.whatsapp_conversations where id = tests.conversation_id('rpc_alice', '447700900701')), 1,
  'the tenant''s message counts as unread');
select lives_ok(format('select public.mark_conversation_read(%L)', tests.conversation_id('rpc_alice', '447700900701')), 'mark_conversation_read');
select is((select unread_count from public.whatsapp_conversations where id = tests.conversation_id('rpc_alice', '447700900701')), 0,
  'mark_conversation_read sets unread_count to zero');
select lives_ok(format('select public.mark_conversation_read(%L)', tests.conversation_id('rpc_alice', '447700900701')),
  'marking a read conversation read again is harmless');
select is(tests.refusal_of(format('select public.mark_conversation_read(%L)', tests.conversation_id('rpc_bob', '447700900707'))), 'P0002 not_found', 'mark_conversation_read: another landlord''s conversation (P0002)');
reset role;
select is((select unread_count from public.whatsapp_conversations where id = tests.conversation_id('rpc_bob', '447700900707')), 1,
  'the other landlord''s unread count is untouched');

-- set_conversation_status ----------------------------------------------------------------------
select tests.authenticate_as('rpc_alice');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_alice', '447700900701'), 'archived'),
  'set_conversation_status archives');
select is((select status from public.whatsapp_conversations where id = tests.conversation_id('rpc_alice', '447700900701')), 'archived',
  'the conversation is archived');
reset role;
select is(tests.route_text('wamid.rpc.701b', '447700900701', 'Any news?') ->> 'routing_status', 'delivered',
  'a tenant message to an archived conversation is still delivered');
select results_eq($$ select status, unread_count from public.whatsapp_conversations where id = tests.conversation_id('rpc_alice', '447700900701') $$,
  $$ values ('active', 1) $$, 'an archived conversation reopens on the next tenant message');

select results_eq($$ select r ->> 'routing_status', r ->> 'landlord_id' from tests.route_text('wamid.rpc.708b', '447700900708', 'Let me in') r $$,
  $$ values ('blocked', null::text) $$, 'blocked, no other landlord: the tenant''s message is held as blocked');
select tests.authenticate_as('rpc_alice');
select is_empty($$ select 1 from public.whatsapp_messages where wamid = 'wamid.rpc.708b' $$, 'the blocking landlord does not see it');
select isnt(public.start_whatsapp_conversation('b1000000-0000-4000-8000-000000000702'), null,
  'the landlord opens a conversation with the tenant she shares with Bob');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_alice', '447700900702'), 'blocked'),
  'and blocks it');
reset role;
select is(tests.route_text('wamid.rpc.702a', '447700900702', 'About the parking') ->> 'routing_status', 'ambiguous',
  'blocked by one landlord only: the shared tenant''s message is not handed to the other landlord either');
select tests.link('rpc_bob', '447700900702');   -- the tenant confirms Bob (a tap on his consent request; 40-)
select tests.authenticate_as('rpc_bob');
select isnt(public.start_whatsapp_conversation('b1000000-0000-4000-8000-0000000007b2'), null,
  'the other landlord opens his conversation with the shared tenant');
select isnt(public.send_whatsapp_template(tests.conversation_id('rpc_bob', '447700900702'), 'parking_update', 'en_GB', '["Bay 4"]'), null,
  'and sends a template');
reset role;
update public.whatsapp_messages set wamid = 'wamid.rpc.bob702', status = 'sent' where body like '[template parking_update]%';
select tests.authenticate_as_service_role();
select is(public.route_inbound_message(tests.text_message('wamid.rpc.702r', '447700900702', 'Bay 4 is fine')
                                        || '{"context": {"id": "wamid.rpc.bob702"}}') ->> 'landlord_id',
  tests.get_supabase_uid('rpc_bob')::text,
  'the tenant''s reply to the other landlord''s message reaches him, though the first landlord blocked the phone');
reset role;
select tests.authenticate_as('rpc_alice');
select is_empty($$ select 1 from public.whatsapp_messages where wamid = 'wamid.rpc.702a' $$, 'the blocking landlord does not see it');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_alice', '447700900702'), 'active'),
  'set_conversation_status unblocks');
reset role;
select results_eq($$ select r ->> 'routing_status', r ->> 'landlord_id' from tests.route_text('wamid.rpc.702b', '447700900702', 'Hello?') r $$,
  $$ values ('delivered', tests.get_supabase_uid('rpc_bob')::text) $$,
  'unblocked, both are candidates again; Bob is the one the tenant confirmed');
select tests.authenticate_as('rpc_alice');
select throws_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_alice', '447700900701'), 'deleted'),
  '22023', 'invalid conversation status ''deleted''', 'set_conversation_status: invalid status (22023)');
select throws_ok(format('select public.set_conversation_status(%L, null)', tests.conversation_id('rpc_alice', '447700900701')),
  '22023', null, 'set_conversation_status: null status (22023)');
select is(tests.refusal_of(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_bob', '447700900707'), 'archived')), 'P0002 not_found', 'set_conversation_status: another landlord''s conversation (P0002)');
reset role;

-- Notifications ------------------------------------------------------------------------------
select results_eq($$ select b.payload ->> 'conversation_id', b.private from tests.broadcasts('landlord:' || tests.get_supabase_uid('rpc_alice'), 'message') b
                     where b.payload ->> 'id' = tests.message_id('wamid.rpc.701a')::text $$,
  format($f$ values (%L, true) $f$, tests.conversation_id('rpc_alice', '447700900701')),
  'an inbound message for a landlord is one private message broadcast on her topic');
select tests.authenticate_as('rpc_bob');
select is(public.set_whatsapp_opt_in(true, false) ->> 'whatsapp_notifications_enabled', 'false', 'Bob turns notifications off');
reset role;
select is(tests.route_text('wamid.rpc.707b', '447700900707', 'Hi again') ->> 'routing_status', 'delivered', 'Bob''s tenant writes again');
select is((select count(*) from tests.broadcasts('landlord:' || tests.get_supabase_uid('rpc_bob'), 'message') b
           where b.payload ->> 'id' = tests.message_id('wamid.rpc.707b')::text), 1::bigint,
  'push notifications off: the live inbox still hears it');
select is_empty(format($$ select 1 from realtime.messages m where m.topic = %L
                            and (m.payload ->> 'id')::uuid in (select id from public.whatsapp_messages where landlord_id = %L) $$,
                       'landlord:' || tests.get_supabase_uid('rpc_alice'), tests.get_supabase_uid('rpc_bob')),
  'nothing of Bob''s is sent on Alice''s topic');
select is_empty($$ select 1 from realtime.messages m where m.topic like 'landlord:%'
                   and (m.payload ->> 'id')::uuid in (select id from public.whatsapp_messages where is_held) $$,
  'held messages are broadcast on no landlord''s topic');
select is_empty($$ select 1 from realtime.messages m where m.topic like 'landlord:%'
                   and m.payload ?| array['raw', 'routing_metadata', 'candidates', 'landlord_id'] $$,
  'no broadcast carries raw, routing metadata or candidates');
select ok((select bool_and(m.private and m.extension = 'broadcast') from realtime.messages m where m.topic like 'landlord:%'),
  'every landlord broadcast is private');
select is((select (b.payload -> 'conversation' ->> 'unread_count')::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('rpc_bob'), 'message') b
           where b.payload ->> 'id' = tests.message_id('wamid.rpc.707b')::text),
  (select unread_count from public.whatsapp_conversations where id = tests.conversation_id('rpc_bob', '447700900707')),
  'the message event carries its conversation''s unread count after the message');
select set_config('tests.conv_events', (select count(*) from tests.broadcasts('landlord:' || tests.get_supabase_uid('rpc_alice'), 'conversation') b
  where b.payload ->> 'id' = tests.conversation_id('rpc_alice', '447700900701')::text)::text, true);
select tests.authenticate_as('rpc_alice');
select public.mark_conversation_read(tests.conversation_id('rpc_alice', '447700900701'));
reset role;
select results_eq($$ select count(*)::int - current_setting('tests.conv_events')::int, bool_or((b.payload ->> 'unread_count')::int = 0)
                     from tests.broadcasts('landlord:' || tests.get_supabase_uid('rpc_alice'), 'conversation') b
                     where b.payload ->> 'id' = tests.conversation_id('rpc_alice', '447700900701')::text $$,
  $$ values (1, true) $$, 'marking a conversation read is one conversation broadcast (unread 0)');
select tests.authenticate_as_service_role();
select public.complete_outbound_message(tests.message_id('The plumber comes at 10.'), 'wamid.rpc.plumber');
reset role;
select is((select count(*)::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('rpc_alice'), 'message_status') b
           where b.payload ->> 'id' = tests.message_id('The plumber comes at 10.')::text and b.payload ->> 'status' = 'sent'), 1,
  'a reply going out is a message_status broadcast');

-- Outbound queue: complete_outbound_message, reconcile_stuck_outbound ------------------------
select tests.authenticate_as_service_role();
select is(public.record_message_status('wamid.rpc.q1', 'delivered', now()) ->> 'pending', 'true',
  'a status that arrives before the sender recorded the wamid is kept pending');
select is(public.complete_outbound_message(tests.message_id('q1'), 'wamid.rpc.q1') ->> 'status', 'delivered',
  'sent with wamid: the pending status is applied at once');
select results_eq($$ select wamid, status, delivered_at = now() from public.whatsapp_messages where body = 'q1' $$,
  $$ values ('wamid.rpc.q1', 'delivered', true) $$, 'the message carries its wamid and the delivered status');
select is(public.complete_outbound_message(tests.message_id('q2'), 'wamid.rpc.q2') ->> 'status', 'sent', 'sent with wamid: status sent');
select results_eq($$ select wamid, status, error_code from public.whatsapp_messages where body = 'q2' $$,
  $$ values ('wamid.rpc.q2', 'sent', null::int) $$, 'the sent message carries its wamid');

select is(public.complete_outbound_message(tests.message_id('q3'), null, '{"code": 131000, "title": "Something went wrong", "retryable": true}') ->> 'status',
  'queued', 'a retryable error puts the message back in the queue');
select results_eq($$ select status, attempt_count, next_attempt_at > now(), error_code, error_title from public.whatsapp_messages where body = 'q3' $$,
  $$ values ('queued', 1, true, 131000, 'Something went wrong') $$, 'with its attempt count, a later next_attempt_at and the error');
select is_empty($$ select 1 from public.claim_outbound_messages(1000) where id = tests.message_id('q3') $$,
  'a message waiting for its retry is not handed out early');
reset role;
update public.whatsapp_messages set next_attempt_at = now() - interval '1 second' where body = 'q3';
select tests.authenticate_as_service_role();
select is((select attempt_count from public.claim_outbound_messages(1000) where id = tests.message_id('q3')), 2,
  'once due it is handed out again (attempt 2)');
select is(public.configure_whatsapp('{"outbound_max_attempts": 2}') ->> 'outbound_max_attempts', '2', 'outbound_max_attempts set to 2');
select is(public.complete_outbound_message(tests.message_id('q3'), null, '{"code": 131000, "title": "Something went wrong", "retryable": true}') ->> 'status',
  'failed', 'after outbound_max_attempts a retryable error fails the message');
select results_eq($$ select status, attempt_count, failed_at is not null from public.whatsapp_messages where body = 'q3' $$,
  $$ values ('failed', 2, true) $$, 'failed after two attempts');

select is(public.complete_outbound_message(tests.message_id('q4'), null, '{"code": 131026, "title": "Message undeliverable"}') ->> 'status',
  'failed', 'a permanent error fails the message');
select results_eq($$ select status, error_code, error_title, error_details ->> 'code', failed_at is not null from public.whatsapp_messages where body = 'q4' $$,
  $$ values ('failed', 131026, 'Message undeliverable', '131026', true) $$, 'with Meta''s code and title');
select is(public.complete_outbound_message(tests.message_id('q5'), null, '{"code": 131047, "title": "Re-engagement message"}') ->> 'status',
  'failed', '131047 fails the message');
select matches((select error_title from public.whatsapp_messages where body = 'q5'), 'template',
  'the 131047 (window closed) error title tells the landlord to send a template');

select throws_ok(format('select public.complete_outbound_message(%L, null, null)', tests.message_id('q7')), '22023', null,
  'complete_outbound_message: neither wamid nor error (22023)');
select throws_ok(format('select public.complete_outbound_message(%L, %L, %L)', tests.message_id('q7'), 'wamid.rpc.q7', '{"code": 1}'), '22023', null,
  'complete_outbound_message: both wamid and error (22023)');
select throws_ok(format('select public.complete_outbound_message(%L, null, %L)', tests.message_id('q7'), '[1]'), '22023', null,
  'complete_outbound_message: error not an object (22023)');
select throws_ok(format('select public.complete_outbound_message(%L, %L)', tests.message_id('q7'), '  '), '22023', null,
  'complete_outbound_message: blank wamid (22023)');
select throws_ok(format('select public.complete_outbound_message(%L, %L)', gen_random_uuid(), 'wamid.rpc.nope'), 'P0002', null,
  'complete_outbound_message: unknown id (P0002)');
select throws_ok(format('select public.complete_outbound_message(%L, %L)', tests.message_id('wamid.rpc.701a'), 'wamid.rpc.nope'), 'P0002', null,
  'complete_outbound_message: an inbound message is not an outbound one (P0002)');
select throws_ok(format('select public.complete_outbound_message(%L, %L)', tests.message_id('q2'), 'wamid.rpc.q2.again'), '55000', null,
  'complete_outbound_message: a message already sent is not sending (55000)');
select throws_ok(format('select public.complete_outbound_message(%L, %L)', tests.message_id('q7'), 'wamid.rpc.q2'), '23505', null,
  'complete_outbound_message: a wamid that belongs to another message (23505)');
reset role;
select tests.authenticate_as('rpc_alice');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_alice', '447700900701'), 'q8 still queued'), null, 'a new reply is queued');
reset role;
select tests.authenticate_as_service_role();
select throws_ok(format('select public.complete_outbound_message(%L, %L)', tests.message_id('q8 still queued'), 'wamid.rpc.q8'), '55000', null,
  'complete_outbound_message: a queued, unclaimed message (55000)');
reset role;

update public.whatsapp_messages set claimed_at = now() - interval '10 minutes' where body = 'q6';
select tests.authenticate_as_service_role();
select ok(public.reconcile_stuck_outbound(300) >= 1, 'reconcile_stuck_outbound reports the stuck messages');
select results_eq($$ select body, status from public.whatsapp_messages where body in ('q6', 'q7') order by body $$,
  $$ values ('q6', 'needs_review'), ('q7', 'sending') $$,
  'a message sending for longer than the timeout needs review; a fresh one is left alone');
select matches((select error_title from public.whatsapp_messages where body = 'q6'), 'check the tenant',
  'the review note says to check the chat before re-sending');
select throws_ok($$ select public.reconcile_stuck_outbound(0) $$, '22023', null, 'reconcile timeout must be positive (22023)');
select is(public.complete_outbound_message(tests.message_id('q6'), 'wamid.rpc.q6') ->> 'status', 'sent',
  'a message under review can still be completed when the result turns up');
reset role;

-- The 24 h window is per conversation: the shared tenant wrote to Bob (702r, 702b), not to Alice.
select tests.authenticate_as('rpc_alice');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('rpc_alice', '447700900702'), 'Hi Sue')), '55000 window_closed',
  'the window is per conversation: a message the tenant sent to another landlord does not open it');
reset role;
select tests.authenticate_as('rpc_bob');
select isnt(public.send_whatsapp_message(tests.conversation_id('rpc_bob', '447700900702'), 'Parking is fine'), null,
  'the window is open for the landlord the tenant wrote to');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('rpc_bob', '447700900702'), 'blocked'),
  'Bob blocks the conversation after queueing a reply');
reset role;
select tests.authenticate_as_service_role();
select is_empty($$ select 1 from public.claim_outbound_messages(1000) c join public.whatsapp_messages m on m.id = c.id
                   where m.body = 'Parking is fine' $$,
  'a reply queued before its conversation was blocked is not handed to a worker');
select is((select status || ': ' || error_title from public.whatsapp_messages where body = 'Parking is fine'),
  'failed: cancelled: the conversation is blocked', 'it is cancelled, with the reason');
select throws_ok(format('select public.complete_outbound_message(%L, null, %L)', tests.message_id('q7'), '{"code": "abc"}'),
  '22023', null, 'complete_outbound_message: a non-numeric error code is refused (22023)');
select throws_ok(format('select public.complete_outbound_message(%L, null, %L)', tests.message_id('q7'), '{"code": 1, "retryable": "yes"}'),
  '22023', null, 'complete_outbound_message: a non-boolean retryable is refused (22023)');
reset role;

select * from finish();
rollback;
