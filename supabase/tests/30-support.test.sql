-- Support staff and held messages (issue 10): what support sees (held messages through RLS and
-- list_held_messages, nothing else), who may call the support RPCs, assignment delivering exactly
-- as the router would (counters, notification, reply link; never into a blocked conversation),
-- non-candidates only with a reason, routing pins (route, expire, end with the lease), dismissal,
-- the append-only audit log, and whatsapp_service_status.
-- Phones 4474005000xx are used only here.
--
-- The audit log's append-only trigger holds for every role, the migration owner (postgres)
-- included. The owner alone could still take it away (ALTER TABLE ... DISABLE TRIGGER, DROP
-- TRIGGER): that is a migration, reviewed like any other, not something an API role can do.
begin;
select plan(127);

-- Setup (postgres) ----------------------------------------------------------------------------
select tests.create_supabase_user('hm_sup', 'ana@support.zenrent.test', '{"role": "support"}');
select tests.create_supabase_user('hm_alice');
select tests.create_supabase_user('hm_bob');
select tests.create_supabase_user('hm_dora');   -- not opted in
select tests.create_supabase_user('hm_eve');    -- no lease with any of these phones
-- Eve writes "support" into her user_metadata, which users can edit themselves: it must not count.
update auth.users set raw_user_meta_data = raw_user_meta_data || '{"role": "support"}'
  where id = tests.get_supabase_uid('hm_eve');

insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at, whatsapp_notifications_enabled) values
  (tests.get_supabase_uid('hm_alice'), 'Alice Held', true, now(), true),
  (tests.get_supabase_uid('hm_bob'), 'Bob Held', true, now(), false),
  (tests.get_supabase_uid('hm_dora'), 'Dora Held', false, null, true),
  (tests.get_supabase_uid('hm_eve'), 'Eve Elsewhere', true, now(), true);

insert into public.properties (id, user_id, address) values
  ('a3000000-0030-4000-8000-000000000001', tests.get_supabase_uid('hm_alice'), '1 Held Street'),
  ('a3000000-0030-4000-8000-000000000002', tests.get_supabase_uid('hm_bob'), '2 Held Street'),
  ('a3000000-0030-4000-8000-000000000004', tests.get_supabase_uid('hm_dora'), '4 Held Street'),
  ('a3000000-0030-4000-8000-000000000005', tests.get_supabase_uid('hm_eve'), '5 Elsewhere Road');

-- Tenant ids: ...0a<n> are Alice's, ...0b<n> Bob's, ...0d<n> Dora's; <n> is the phone's last digit.
insert into public.tenants (id, user_id, name, phone) values
  ('b3000000-0030-4000-8000-0000000000a1', tests.get_supabase_uid('hm_alice'), 'Amy Ambig', '07400 500001'),
  ('b3000000-0030-4000-8000-0000000000b1', tests.get_supabase_uid('hm_bob'), 'Amelia Ambig', '+44 7400 500001'),
  ('b3000000-0030-4000-8000-0000000000a2', tests.get_supabase_uid('hm_alice'), 'Abe Two', '07400 500002'),
  ('b3000000-0030-4000-8000-0000000000b2', tests.get_supabase_uid('hm_bob'), 'Bert Two', '07400-500002'),
  ('b3000000-0030-4000-8000-0000000000d4', tests.get_supabase_uid('hm_dora'), 'Dee Disabled', '07400 500004'),
  ('b3000000-0030-4000-8000-0000000000a5', tests.get_supabase_uid('hm_alice'), 'Ada Five', '07400 500005'),
  ('b3000000-0030-4000-8000-0000000000b5', tests.get_supabase_uid('hm_bob'), 'Bea Five', '07400 500005'),
  ('b3000000-0030-4000-8000-0000000000a6', tests.get_supabase_uid('hm_alice'), 'Ann Six', '07400 500006'),
  ('b3000000-0030-4000-8000-0000000000b6', tests.get_supabase_uid('hm_bob'), 'Bo Six', '07400 500006'),
  ('b3000000-0030-4000-8000-0000000000a7', tests.get_supabase_uid('hm_alice'), 'Al Seven', '07400 500007');

insert into public.leases (tenant_id, property_id, status, start_date)
select t.id, case t.user_id when tests.get_supabase_uid('hm_alice') then 'a3000000-0030-4000-8000-000000000001'::uuid
                            when tests.get_supabase_uid('hm_bob') then 'a3000000-0030-4000-8000-000000000002'::uuid
                            else 'a3000000-0030-4000-8000-000000000004'::uuid end,
       'active', '2025-01-01'
from public.tenants t where t.id::text like 'b3000000-0030-%';

-- Bob blocked phone 6. Alice already has a conversation with phone 1 (two unread, two days old).
insert into public.whatsapp_conversations (landlord_id, tenant_phone, status) values
  (tests.get_supabase_uid('hm_bob'), '447400500006', 'blocked');
insert into public.whatsapp_conversations (landlord_id, tenant_phone, tenant_id, property_id, unread_count,
                                           last_message_at, last_inbound_at, last_message_preview) values
  (tests.get_supabase_uid('hm_alice'), '447400500001', 'b3000000-0030-4000-8000-0000000000a1',
   'a3000000-0030-4000-8000-000000000001', 2, now() - interval '2 days', now() - interval '2 days', 'Earlier chat');

select tests.route_text('wamid.HM_P1_A', '447400500001', 'Is the boiler yours or the other flat''s?', 600);
select tests.route_text('wamid.HM_P2_A', '447400500002', 'Who do I pay now?', 500);
select tests.route_text('wamid.HM_P3_A', '447400500003', 'Is the flat still available?', 400);
select tests.route_text('wamid.HM_P4_A', '447400500004', 'Hello Dora', 300);
select tests.route_text('wamid.HM_P5_A', '447400500005', 'Cheap crypto, click here', 200);
select tests.route_text('wamid.HM_P6_A', '447400500006', 'Please call me back', 100);
select tests.route_text('wamid.HM_P7_A', '447400500007', 'Thanks Alice', 50);
-- The tenants have since confirmed these landlords (consent taps, 40-), so support needs no reason.
select tests.link('hm_alice', '447400500001');
select tests.link('hm_bob', '447400500001');
select tests.link('hm_alice', '447400500006');

select results_eq(
  $$ select m.wamid, m.routing_status from public.whatsapp_messages m
     where m.tenant_phone like '4474005000%' and m.direction = 'incoming' order by m.wamid $$,
  $$ values ('wamid.HM_P1_A', 'ambiguous'), ('wamid.HM_P2_A', 'ambiguous'), ('wamid.HM_P3_A', 'unknown_sender'),
            ('wamid.HM_P4_A', 'landlord_disabled'), ('wamid.HM_P5_A', 'ambiguous'), ('wamid.HM_P6_A', 'ambiguous'),
            ('wamid.HM_P7_A', 'delivered') $$,
  'setup: six held messages (ambiguous, unknown_sender, landlord_disabled, one with a blocked candidate) and one delivered');

-- Distinct arrival times, newer than anything else in the database (so they head the queue):
-- phone 6 newest, phone 1 oldest.
update public.whatsapp_messages m set created_at = now() + interval '1 day' - (7 - right(m.tenant_phone, 1)::int) * interval '1 minute'
  where m.wamid like 'wamid.HM_P_\_A' escape '\' and m.routing_status <> 'delivered';

-- Support: reads held messages, nothing else ---------------------------------------------------
select tests.authenticate_as('hm_sup');
select results_eq(
  $$ select m.wamid, m.routing_status, m.body from public.whatsapp_messages m where m.tenant_phone like '4474005000%' order by m.wamid $$,
  $$ values ('wamid.HM_P1_A', 'ambiguous', 'Is the boiler yours or the other flat''s?'), ('wamid.HM_P2_A', 'ambiguous', 'Who do I pay now?'),
            ('wamid.HM_P3_A', 'unknown_sender', 'Is the flat still available?'), ('wamid.HM_P4_A', 'landlord_disabled', 'Hello Dora'),
            ('wamid.HM_P5_A', 'ambiguous', 'Cheap crypto, click here'), ('wamid.HM_P6_A', 'ambiguous', 'Please call me back') $$,
  'support selects the held messages (ambiguous, unknown_sender, landlord_disabled): not the delivered one, not ZenRent''s replies');
select is_empty($$ select 1 from public.whatsapp_messages m where m.routing_status not in ('ambiguous', 'unknown_sender', 'landlord_disabled') $$,
  'support sees no delivered, outgoing, system or history message anywhere');
select throws_ok($$ select * from private.whatsapp_message_details $$, '42501', null,
  'support cannot read routing metadata directly (candidates only through list_held_messages)');
select is_empty($$ select 1 from public.whatsapp_conversations $$, 'support sees no conversation');
select is_empty($$ select 1 from public.tenants $$, 'support sees no tenant');
select is_empty($$ select 1 from public.properties $$, 'support sees no property');
select is_empty($$ select 1 from public.leases $$, 'support sees no lease');
select is_empty($$ select 1 from public.user_profiles $$, 'support sees no landlord profile');
select throws_ok($$ update public.whatsapp_messages set routing_status = 'dismissed' where id = tests.message_id('wamid.HM_P4_A') $$,
  '42501', null, 'support cannot update a message directly (only through the RPCs)');
select throws_ok($$ select * from private.routing_pins $$, '42501', null, 'support cannot read the routing pins table');

select results_eq(
  $$ select l.wamid, l.routing_status, l.rule from public.list_held_messages() l where l.tenant_phone like '4474005000%' $$,
  $$ values ('wamid.HM_P6_A', 'ambiguous', 'several_landlords'), ('wamid.HM_P5_A', 'ambiguous', 'several_landlords'),
            ('wamid.HM_P4_A', 'landlord_disabled', 'single_candidate:landlord_not_opted_in'),
            ('wamid.HM_P3_A', 'unknown_sender', 'no_active_lease_for_phone'),
            ('wamid.HM_P2_A', 'ambiguous', 'several_landlords'), ('wamid.HM_P1_A', 'ambiguous', 'several_landlords') $$,
  'list_held_messages: every held message, newest first, with the routing rule');
select results_eq(
  $$ select l.id, l.tenant_phone, l.type, l.body, l.sent_at from public.list_held_messages() l where l.wamid = 'wamid.HM_P1_A' $$,
  $$ values (tests.message_id('wamid.HM_P1_A'), '447400500001', 'text', 'Is the boiler yours or the other flat''s?', tests.at(600)) $$,
  'list_held_messages: id, phone, type, body and sent_at of a message');
select results_eq(
  $$ select (c ->> 'landlord_id')::uuid, c ->> 'landlord_name', c ->> 'property_address', c ->> 'tenant_name', (c ->> 'whatsapp_enabled')::boolean
     from public.list_held_messages() l, jsonb_array_elements(l.candidates) c where l.wamid = 'wamid.HM_P1_A' order by 2 $$,
  $$ values (tests.get_supabase_uid('hm_alice'), 'Alice Held', '1 Held Street', 'Amy Ambig', true),
            (tests.get_supabase_uid('hm_bob'), 'Bob Held', '2 Held Street', 'Amelia Ambig', true) $$,
  'an ambiguous message comes with its candidates: landlord id and name, property address, tenant name');
select results_eq(
  $$ select c ->> 'landlord_name', c ->> 'property_address', c ->> 'tenant_name', (c ->> 'whatsapp_enabled')::boolean
     from public.list_held_messages() l, jsonb_array_elements(l.candidates) c where l.wamid = 'wamid.HM_P4_A' $$,
  $$ values ('Dora Held', '4 Held Street', 'Dee Disabled', false) $$,
  'a landlord_disabled message shows its one candidate, not opted in');
select is((select l.candidates from public.list_held_messages() l where l.wamid = 'wamid.HM_P3_A'), '[]'::jsonb,
  'an unknown sender has no candidates');
select is_empty($$ select c from public.list_held_messages() l, jsonb_array_elements(l.candidates) c
                   where l.tenant_phone like '4474005000%' and c ?| array['conversation_status', 'tenant_id', 'property_id', 'enabled'] $$,
  'candidates carry names only: no conversation status, tenant or property ids');

select results_eq(
  $$ select l.wamid from public.list_held_messages('unknown_sender') l where l.tenant_phone like '4474005000%' $$,
  $$ values ('wamid.HM_P3_A') $$, 'status filter unknown_sender');
select results_eq(
  $$ select l.wamid from public.list_held_messages('landlord_disabled') l where l.tenant_phone like '4474005000%' $$,
  $$ values ('wamid.HM_P4_A') $$, 'status filter landlord_disabled');
select results_eq(
  $$ select l.wamid from public.list_held_messages('ambiguous') l where l.tenant_phone like '4474005000%' $$,
  $$ values ('wamid.HM_P6_A'), ('wamid.HM_P5_A'), ('wamid.HM_P2_A'), ('wamid.HM_P1_A') $$, 'status filter ambiguous, newest first');
select is_empty($$ select 1 from public.list_held_messages('ambiguous', null, 200) l where l.routing_status <> 'ambiguous' $$,
  'a filtered list holds nothing of another status');

select results_eq(
  $$ select l.wamid from public.list_held_messages(null, null, 2) l $$,
  $$ values ('wamid.HM_P6_A'), ('wamid.HM_P5_A') $$, 'keyset: the first page of two');
select results_eq(
  $$ select l.wamid from public.list_held_messages(null, tests.message_id('wamid.HM_P5_A'), 2) l $$,
  $$ values ('wamid.HM_P4_A'), ('wamid.HM_P3_A') $$, 'keyset: after_id = the last row of the first page gives the next two');
select results_eq(
  $$ select l.wamid from public.list_held_messages('ambiguous', tests.message_id('wamid.HM_P5_A'), 2) l $$,
  $$ values ('wamid.HM_P2_A'), ('wamid.HM_P1_A') $$, 'keyset and status filter together');

select throws_ok($$ select * from public.list_held_messages('delivered') $$, '22023', null, 'a status that is not a held status is refused (22023)');
select throws_ok($$ select * from public.list_held_messages(null, null, 0) $$, '22023', null, 'page_size 0 is refused (22023)');
select throws_ok($$ select * from public.list_held_messages(null, null, 201) $$, '22023', null, 'page_size 201 is refused (22023)');
select throws_ok($$ select * from public.list_held_messages(null, null, null) $$, '22023', null, 'page_size null is refused (22023)');
select throws_ok($$ select * from public.list_held_messages(null, gen_random_uuid()) $$, 'P0002', null, 'an unknown after_id is not found (P0002)');

select is((public.whatsapp_service_status() ->> 'held')::int, tests.held_count(),
  'whatsapp_service_status works for support and counts every held message');
select ok(public.whatsapp_service_status() ?& array['inbound_last_24h', 'held', 'outbound_queued', 'outbound_sending',
            'outbound_needs_review', 'oldest_queued_at', 'outbound_failed_last_24h', 'webhook_errors_last_24h',
            'pending_statuses', 'active_pins', 'at'],
  'whatsapp_service_status has every count the status page and /metrics read');
select ok(public.whatsapp_service_gauges() ?& array['held', 'outbound_queued', 'outbound_sending', 'outbound_needs_review',
            'oldest_queued_at', 'outbound_failed_last_24h', 'webhook_errors_last_24h', 'dead_letters_last_24h',
            'media_pending', 'oldest_media_pending_at', 'media_failed_last_24h', 'at'],
  'whatsapp_service_gauges has every gauge /metrics reads');
select is(public.whatsapp_service_status() - 'at', public.whatsapp_service_gauges() - 'at' || jsonb_build_object(
            'inbound_last_24h', public.whatsapp_service_status() -> 'inbound_last_24h',
            'declined_links', public.whatsapp_service_status() -> 'declined_links'),
  'the status page''s counts are the gauges plus the day''s inbound and the declined links');
select throws_ok($$ select private.held_message(tests.message_id('wamid.HM_P4_A')) $$, '42501', null,
  'the private helpers behind the RPCs are not callable by support directly');
reset role;

-- A user who put "support" in their own user_metadata is no support user ------------------------
select tests.authenticate_as('hm_eve');
select is(tests.refusal_of($$ select * from public.list_held_messages() $$), '42501 support_only',
  'user_metadata.role = support (user-editable) does not make support: list refused (42501)');
select is_empty($$ select 1 from public.whatsapp_messages m where m.tenant_phone like '4474005000%' $$,
  'and no held message is visible to them');
reset role;

-- A landlord: never sees held rows, cannot call the support RPCs --------------------------------
select tests.authenticate_as('hm_alice');
select results_eq($$ select m.wamid from public.whatsapp_messages m where m.tenant_phone like '4474005000%' $$,
  $$ values ('wamid.HM_P7_A') $$, 'a candidate landlord sees her delivered message and none of the held ones');
select is(tests.refusal_of($$ select * from public.list_held_messages() $$), '42501 support_only', 'a landlord cannot list held messages (42501)');
select is(tests.refusal_of($$ select public.assign_held_message(tests.message_id('wamid.HM_P1_A'), tests.get_supabase_uid('hm_alice')) $$), '42501 support_only', 'a landlord cannot assign a held message, not even to herself (42501)');
select is(tests.refusal_of($$ select public.dismiss_held_message(tests.message_id('wamid.HM_P1_A'), 'spam') $$), '42501 support_only',
  'a landlord cannot dismiss a held message (42501)');
select is(tests.refusal_of($$ select public.whatsapp_service_status() $$), '42501 support_only', 'a landlord cannot read the service status (42501)');
select is(tests.refusal_of($$ select public.whatsapp_service_gauges() $$), '42501 support_only', 'a landlord cannot read the gauges (42501)');
select throws_ok($$ select private.require_support() $$, '42501', null, 'a landlord cannot call private.require_support()');
reset role;
select tests.authenticate_as('hm_bob');
select is_empty($$ select 1 from public.whatsapp_messages m where m.tenant_phone like '4474005000%' $$,
  'the other candidate landlord sees none of the held messages either');
reset role;

-- anon ----------------------------------------------------------------------------------------
select tests.clear_authentication();
select throws_ok($$ select * from public.list_held_messages() $$, '42501', null, 'anon cannot list held messages (42501)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P1_A'), tests.get_supabase_uid('hm_alice')) $$,
  '42501', null, 'anon cannot assign (42501)');
select throws_ok($$ select public.dismiss_held_message(tests.message_id('wamid.HM_P1_A'), 'spam') $$, '42501', null, 'anon cannot dismiss (42501)');
select throws_ok($$ select public.whatsapp_service_status() $$, '42501', null, 'anon cannot read the service status (42501)');
select throws_ok($$ select public.whatsapp_service_gauges() $$, '42501', null, 'anon cannot read the gauges (42501)');
reset role;

-- service role: the status, not the queue ---------------------------------------------------------
select tests.authenticate_as_service_role();
select is((public.whatsapp_service_status() ->> 'held')::int, tests.held_count(), 'whatsapp_service_status works for the service role');
select throws_ok($$ select * from public.list_held_messages() $$, '42501', null, 'the service role has no support queue (42501)');
reset role;

-- Assign to a candidate, with a pin --------------------------------------------------------------
select tests.authenticate_as('hm_sup');
select results_eq(
  $$ select (r ->> 'message_id')::uuid, (r ->> 'landlord_id')::uuid, (r ->> 'conversation_id')::uuid, (r ->> 'pinned_until')::timestamptz
     from public.assign_held_message(tests.message_id('wamid.HM_P1_A'), tests.get_supabase_uid('hm_alice'), 30) r $$,
  $$ values (tests.message_id('wamid.HM_P1_A'), tests.get_supabase_uid('hm_alice'), tests.conversation_id('hm_alice', '447400500001'),
             now() + interval '30 days') $$,
  'assign_held_message with pin_days 30 returns the message, landlord, her existing conversation and the pin''s end');
select is_empty($$ select 1 from public.list_held_messages(null, null, 200) l where l.wamid = 'wamid.HM_P1_A' $$,
  'the assigned message leaves the queue');
select is_empty($$ select 1 from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_A' $$,
  'and support can no longer read it (it is a landlord''s now)');
reset role;

select results_eq(
  $$ select m.routing_status, m.landlord_id, m.tenant_id, m.property_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule',
            (tests.routing_metadata(m.id) ->> 'assigned_by')::uuid, tests.routing_metadata(m.id) ->> 'held_as'
     from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_A' $$,
  $$ values ('delivered', tests.get_supabase_uid('hm_alice'), 'b3000000-0030-4000-8000-0000000000a1'::uuid,
             'a3000000-0030-4000-8000-000000000001'::uuid, tests.conversation_id('hm_alice', '447400500001'), 'several_landlords',
             tests.get_supabase_uid('hm_sup'), 'ambiguous') $$,
  'the message is delivered as the router would: landlord, her tenant and property, her conversation; the decision kept');
select results_eq(
  $$ select c.unread_count, c.last_message_at, c.last_inbound_at, c.last_message_preview, c.status
     from public.whatsapp_conversations c where c.id = tests.conversation_id('hm_alice', '447400500001') $$,
  $$ values (3, tests.at(600), tests.at(600), 'Is the boiler yours or the other flat''s?', 'active') $$,
  'her conversation: unread_count + 1, last_message_at, last_inbound_at and preview from the message');
select results_eq(
  $$ select (select count(*)::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('hm_alice'), 'message') b
             where b.payload ->> 'id' = tests.message_id('wamid.HM_P1_A')::text),
            (select count(*)::int from tests.broadcasts('support', 'resolved') b where b.payload ->> 'id' = tests.message_id('wamid.HM_P1_A')::text) $$,
  $$ values (1, 1) $$,
  'the assigned message is broadcast once to the landlord, and once to support as resolved');
select results_eq(
  $$ select p.landlord_id, p.expires_at, p.created_by, p.reason from private.routing_pins p where p.phone = '447400500001' $$,
  $$ values (tests.get_supabase_uid('hm_alice'), now() + interval '30 days', tests.get_supabase_uid('hm_sup'), null::text) $$,
  'pin_days 30 pins the phone to the landlord for 30 days');
select results_eq(
  $$ select a.actor_id, a.actor_email, a.action, a.landlord_id, a.pin_days, a.reason, a.created_at,
            a.details ->> 'held_as', (a.details ->> 'candidate')::boolean
     from private.support_audit_log a where a.message_id = tests.message_id('wamid.HM_P1_A') $$,
  $$ values (tests.get_supabase_uid('hm_sup'), 'ana@support.zenrent.test', 'assign_and_pin', tests.get_supabase_uid('hm_alice'),
             30, null::text, now(), 'ambiguous', true) $$,
  'the audit log records who, what, which message, which landlord, the pin and when');

select tests.authenticate_as('hm_alice');
select results_eq($$ select m.wamid from public.whatsapp_messages m where m.tenant_phone = '447400500001' $$,
  $$ values ('wamid.HM_P1_A') $$, 'the landlord now reads the assigned message');
reset role;

-- The pin routes the next message, expires, and ends with the lease --------------------------------
select tests.route_text('wamid.HM_P1_B', '447400500001', 'And the radiator?', 30);
select results_eq(
  $$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'rule', m.conversation_id
     from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_B' $$,
  $$ values ('delivered', tests.get_supabase_uid('hm_alice'), 'support_pin', tests.conversation_id('hm_alice', '447400500001')) $$,
  'the next message from the pinned phone (ambiguous before) routes to the pinned landlord: rule support_pin');
select is((select c.unread_count from public.whatsapp_conversations c where c.id = tests.conversation_id('hm_alice', '447400500001')), 4,
  'and counts as unread in her conversation');

update private.routing_pins set expires_at = now() - interval '1 second' where phone = '447400500001';
select tests.route_text('wamid.HM_P1_C', '447400500001', 'Hello again', 20);
select results_eq(
  $$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'rule' from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_C' $$,
  $$ values ('ambiguous', null::uuid, 'several_confirmed_landlords') $$,
  'once the pin has expired the phone is ambiguous again');

update private.routing_pins set expires_at = now() + interval '30 days' where phone = '447400500001';
select tests.route_text('wamid.HM_P1_D', '447400500001', 'Pinned again', 15);
select is((select tests.routing_metadata(m.id) ->> 'rule' from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_D'), 'support_pin',
  'a live pin routes again');

update public.leases set status = 'ended', end_date = current_date where tenant_id = 'b3000000-0030-4000-8000-0000000000a1';
select tests.route_text('wamid.HM_P1_E', '447400500001', 'I moved out of Alice''s flat', 10);
select results_eq(
  $$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'rule', jsonb_array_length(tests.routing_metadata(m.id) -> 'candidates')
     from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_E' $$,
  $$ values ('delivered', tests.get_supabase_uid('hm_bob'), 'single_candidate', 1) $$,
  'when the pinned landlord''s lease ends she is no longer a candidate: the pin no longer routes there');

-- Assign to a non-candidate: only with a reason; never a pin -------------------------------------
select tests.authenticate_as('hm_sup');
select is(tests.refusal_of($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_eve')) $$),
  '22023 invalid_value', 'assigning to a non-candidate without a reason is refused (22023)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_eve'), 0, '   ') $$,
  '22023', null, 'a blank reason is no reason (22023)');
select is(tests.refusal_of($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_eve'), 7, 'Tenant phoned') $$), '22023 invalid_value', 'a pin for a non-candidate is refused even with a reason (22023)');
select is(tests.refusal_of($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), gen_random_uuid(), 0, 'whoever') $$), 'P0002 not_found', 'an unknown landlord is not found (P0002)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_alice'), -1) $$,
  '22023', null, 'pin_days -1 is refused (22023)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_alice'), 366) $$,
  '22023', null, 'pin_days 366 is refused (22023)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_alice'), null) $$,
  '22023', null, 'pin_days null is refused (22023)');
reset role;
select results_eq(
  $$ select m.routing_status, m.landlord_id from public.whatsapp_messages m where m.wamid = 'wamid.HM_P2_A' $$,
  $$ values ('ambiguous', null::uuid) $$, 'refused assignments leave the message held');
select is_empty($$ select 1 from private.support_audit_log a where a.message_id = tests.message_id('wamid.HM_P2_A') $$,
  'refused assignments write no audit row');
select is_empty($$ select 1 from private.routing_pins p where p.phone = '447400500002' $$, 'and no pin');

select tests.authenticate_as('hm_sup');
select lives_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_A'), tests.get_supabase_uid('hm_eve'), 0,
                                                     '  Tenant phoned: Eve manages this flat now  ') $$,
  'assigning to a non-candidate with a reason is allowed');
reset role;
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.tenant_id, m.property_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'reason'
     from public.whatsapp_messages m where m.wamid = 'wamid.HM_P2_A' $$,
  $$ values ('delivered', tests.get_supabase_uid('hm_eve'), null::uuid, null::uuid, tests.conversation_id('hm_eve', '447400500002'),
             'Tenant phoned: Eve manages this flat now') $$,
  'delivered to that landlord (no lease: no tenant or property) in a new conversation, the reason kept');
select results_eq(
  $$ select c.unread_count, c.last_message_at, c.last_message_preview from public.whatsapp_conversations c
     where c.id = tests.conversation_id('hm_eve', '447400500002') $$,
  $$ values (1, tests.at(500), 'Who do I pay now?') $$, 'the new conversation has unread 1, the time and the preview');
select results_eq(
  $$ select a.actor_id, a.action, a.landlord_id, a.pin_days, a.reason, (a.details ->> 'candidate')::boolean
     from private.support_audit_log a where a.message_id = tests.message_id('wamid.HM_P2_A') $$,
  $$ values (tests.get_supabase_uid('hm_sup'), 'assign', tests.get_supabase_uid('hm_eve'), 0, 'Tenant phoned: Eve manages this flat now', false) $$,
  'audited as assign, pin_days 0, with the (trimmed) reason and candidate = false');

-- A reply keeps its link, to the assigned landlord's own message only, as the router links replies.
select tests.route_text('wamid.HM_P2_Q', '447400500002', 'About my last message', 40, 'wamid.HM_P2_A');
select results_eq(
  $$ select m.routing_status, m.reply_to_wamid, m.reply_to_message_id from public.whatsapp_messages m where m.wamid = 'wamid.HM_P2_Q' $$,
  $$ values ('ambiguous', 'wamid.HM_P2_A', null::uuid) $$, 'a held reply is linked to nothing yet');
select tests.authenticate_as('hm_sup');
select lives_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P2_Q'), tests.get_supabase_uid('hm_eve'), 0, 'same tenant as before') $$,
  'assign the reply to the same landlord');
reset role;
select is((select m.reply_to_message_id from public.whatsapp_messages m where m.wamid = 'wamid.HM_P2_Q'), tests.message_id('wamid.HM_P2_A'),
  'once assigned, the reply points at the message it quotes in that landlord''s conversation');

-- Never into a conversation the landlord has blocked ----------------------------------------------
select tests.authenticate_as('hm_sup');
select is(tests.refusal_of($$ select public.assign_held_message(tests.message_id('wamid.HM_P6_A'), tests.get_supabase_uid('hm_bob')) $$), '55000 landlord_blocked_phone', 'assigning to a candidate who blocked the phone is refused (55000)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P6_A'), tests.get_supabase_uid('hm_bob'), 0, 'I insist') $$,
  '55000', null, 'a reason does not override a block (55000)');
reset role;
select results_eq(
  $$ select c.status, c.unread_count from public.whatsapp_conversations c where c.id = tests.conversation_id('hm_bob', '447400500006') $$,
  $$ values ('blocked', 0) $$, 'the blocked conversation is untouched');
select tests.authenticate_as('hm_sup');
select lives_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P6_A'), tests.get_supabase_uid('hm_alice')) $$,
  'the other candidate can have it');
reset role;

-- Notifications off: delivered, not notified --------------------------------------------------------
select tests.authenticate_as('hm_sup');
select lives_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P1_C'), tests.get_supabase_uid('hm_bob')) $$,
  'assign the message held after the pin expired to the other candidate (whose lease still runs)');
reset role;
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.tenant_id, m.property_id from public.whatsapp_messages m where m.wamid = 'wamid.HM_P1_C' $$,
  $$ values ('delivered', tests.get_supabase_uid('hm_bob'), 'b3000000-0030-4000-8000-0000000000b1'::uuid,
             'a3000000-0030-4000-8000-000000000002'::uuid) $$,
  'delivered with that landlord''s own tenant and property');
select is((select c.unread_count from public.whatsapp_conversations c where c.id = tests.conversation_id('hm_bob', '447400500001')), 2,
  'his conversation (opened by the message after the lease ended) counts it unread');
select is((select count(*)::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('hm_bob'), 'message') b
           where b.payload ->> 'id' = tests.message_id('wamid.HM_P1_C')::text), 1,
  'a landlord with push notifications off still hears it in the live inbox');

-- Dismiss ---------------------------------------------------------------------------------------
select tests.authenticate_as('hm_sup');
select throws_ok($$ select public.dismiss_held_message(tests.message_id('wamid.HM_P5_A'), null) $$, '22023',
  'a reason is required to dismiss a message', 'dismiss without a reason is refused (22023)');
select throws_ok($$ select public.dismiss_held_message(tests.message_id('wamid.HM_P5_A'), ' ') $$, '22023', null, 'a blank reason is refused (22023)');
select results_eq(
  $$ select (r ->> 'message_id')::uuid, r ->> 'routing_status' from public.dismiss_held_message(tests.message_id('wamid.HM_P5_A'), 'spam') r $$,
  $$ values (tests.message_id('wamid.HM_P5_A'), 'dismissed') $$, 'dismiss with a reason');
select is_empty($$ select 1 from public.list_held_messages(null, null, 200) l where l.wamid = 'wamid.HM_P5_A' $$,
  'the dismissed message leaves the queue');
select is_empty($$ select 1 from public.whatsapp_messages m where m.wamid = 'wamid.HM_P5_A' $$,
  'and is no longer readable by support');
reset role;
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'reason',
            (tests.routing_metadata(m.id) ->> 'dismissed_by')::uuid, tests.routing_metadata(m.id) ->> 'held_as', m.body
     from public.whatsapp_messages m where m.wamid = 'wamid.HM_P5_A' $$,
  $$ values ('dismissed', null::uuid, null::uuid, 'spam', tests.get_supabase_uid('hm_sup'), 'ambiguous', 'Cheap crypto, click here') $$,
  'the message is kept, marked dismissed, with who and why');
select results_eq(
  $$ select a.actor_id, a.action, a.landlord_id, a.pin_days, a.reason from private.support_audit_log a
     where a.message_id = tests.message_id('wamid.HM_P5_A') $$,
  $$ values (tests.get_supabase_uid('hm_sup'), 'dismiss', null::uuid, null::int, 'spam') $$, 'the dismissal is audited');
select tests.authenticate_as('hm_alice');
select is_empty($$ select 1 from public.whatsapp_messages m where m.wamid = 'wamid.HM_P5_A' $$, 'no landlord sees a dismissed message');
reset role;

-- Already resolved or unknown: not found ---------------------------------------------------------
select tests.authenticate_as('hm_sup');
select is(tests.refusal_of($$ select public.assign_held_message(tests.message_id('wamid.HM_P1_A'), tests.get_supabase_uid('hm_bob')) $$), 'P0002 not_found', 'an assigned message cannot be assigned again (P0002)');
select throws_ok($$ select public.dismiss_held_message(tests.message_id('wamid.HM_P1_A'), 'spam') $$, 'P0002', null,
  'an assigned message cannot be dismissed (P0002)');
select throws_ok($$ select public.dismiss_held_message(tests.message_id('wamid.HM_P5_A'), 'spam') $$, 'P0002', null,
  'a dismissed message cannot be dismissed again (P0002)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P5_A'), tests.get_supabase_uid('hm_alice')) $$, 'P0002', null,
  'a dismissed message cannot be assigned (P0002)');
select throws_ok($$ select public.assign_held_message(tests.message_id('wamid.HM_P7_A'), tests.get_supabase_uid('hm_bob'), 0, 'steal it') $$,
  'P0002', null, 'a message the router delivered is not support''s to move (P0002)');
select throws_ok($$ select public.dismiss_held_message(tests.system_reply_id('447400500003'), 'x') $$, 'P0002', null,
  'ZenRent''s own outgoing reply is not a held message (P0002)');
select throws_ok($$ select public.assign_held_message(gen_random_uuid(), tests.get_supabase_uid('hm_alice')) $$, 'P0002', null,
  'an unknown message id is not found (assign, P0002)');
select throws_ok($$ select public.dismiss_held_message(gen_random_uuid(), 'spam') $$, 'P0002', null,
  'an unknown message id is not found (dismiss, P0002)');
select results_eq(
  $$ select l.wamid from public.list_held_messages() l where l.tenant_phone like '4474005000%' order by l.wamid $$,
  $$ values ('wamid.HM_P3_A'), ('wamid.HM_P4_A') $$, 'what is left in the queue: the unknown sender and the landlord_disabled message');
select is((public.whatsapp_service_status() ->> 'held')::int, tests.held_count(), 'the status count follows');
select ok((public.whatsapp_service_status() ->> 'active_pins')::int >= 1, 'the status counts the active pin');
reset role;

-- The audit log: every action, by the support user, append-only for every role --------------------
select results_eq(
  $$ select a.action, m.wamid, a.landlord_id, a.pin_days from private.support_audit_log a
     join public.whatsapp_messages m on m.id = a.message_id where m.tenant_phone like '4474005000%' order by a.id $$,
  $$ values ('assign_and_pin', 'wamid.HM_P1_A', tests.get_supabase_uid('hm_alice'), 30),
            ('assign', 'wamid.HM_P2_A', tests.get_supabase_uid('hm_eve'), 0),
            ('assign', 'wamid.HM_P2_Q', tests.get_supabase_uid('hm_eve'), 0),
            ('assign', 'wamid.HM_P6_A', tests.get_supabase_uid('hm_alice'), 0),
            ('assign', 'wamid.HM_P1_C', tests.get_supabase_uid('hm_bob'), 0),
            ('dismiss', 'wamid.HM_P5_A', null::uuid, null::int) $$,
  'one audit row per successful action, in order; none for refused ones');
select is_empty(
  $$ select 1 from private.support_audit_log a join public.whatsapp_messages m on m.id = a.message_id
     where m.tenant_phone like '4474005000%' and a.actor_id is distinct from tests.get_supabase_uid('hm_sup') $$,
  'every row names the support user who acted');

create temporary table hm_audit_before on commit drop as select * from private.support_audit_log;

select tests.authenticate_as('hm_sup');
select throws_ok($$ update private.support_audit_log set reason = 'nothing happened' $$, '42501', null, 'support cannot update the audit log (42501)');
select throws_ok($$ delete from private.support_audit_log $$, '42501', null, 'support cannot delete from the audit log (42501)');
select throws_ok($$ insert into private.support_audit_log (actor_id, action, message_id) values (gen_random_uuid(), 'dismiss', gen_random_uuid()) $$,
  '42501', null, 'support cannot write audit rows directly (42501)');
select throws_ok($$ select * from private.support_audit_log $$, '42501', null, 'support cannot read the audit log directly (42501)');
reset role;
select tests.authenticate_as_service_role();
select throws_ok($$ update private.support_audit_log set reason = 'nothing happened' $$, '42501', null, 'service_role cannot update the audit log (42501)');
select throws_ok($$ delete from private.support_audit_log $$, '42501', null, 'service_role cannot delete from the audit log (42501)');
reset role;
select tests.clear_authentication();
select throws_ok($$ update private.support_audit_log set reason = 'nothing happened' $$, '42501', null, 'anon cannot update the audit log (42501)');
select throws_ok($$ delete from private.support_audit_log $$, '42501', null, 'anon cannot delete from the audit log (42501)');
reset role;

-- Even with the privilege (granted here by mistake, rolled back), a role hits the trigger.
grant update, delete, truncate on private.support_audit_log to service_role;
select tests.authenticate_as_service_role();
select throws_ok($$ update private.support_audit_log set reason = 'nothing happened' $$, '42501',
  'private.support_audit_log is append-only', 'a role granted UPDATE still cannot update: the trigger refuses (42501)');
select throws_ok($$ delete from private.support_audit_log $$, '42501',
  'private.support_audit_log is append-only', 'a role granted DELETE still cannot delete: the trigger refuses (42501)');
select throws_ok($$ truncate private.support_audit_log $$, '42501',
  'private.support_audit_log is append-only', 'a role granted TRUNCATE still cannot truncate (42501)');
reset role;
revoke update, delete, truncate on private.support_audit_log from service_role;

-- And postgres (the migration owner) too, short of dropping the trigger (see the header).
select throws_ok($$ update private.support_audit_log set reason = 'nothing happened' $$, '42501',
  'private.support_audit_log is append-only', 'postgres cannot update the audit log either (trigger, 42501)');
select throws_ok($$ delete from private.support_audit_log $$, '42501',
  'private.support_audit_log is append-only', 'postgres cannot delete from the audit log either (trigger, 42501)');
select throws_ok($$ truncate private.support_audit_log $$, '42501',
  'private.support_audit_log is append-only', 'postgres cannot truncate the audit log either (42501)');
select set_eq($$ select * from private.support_audit_log $$, $$ select * from hm_audit_before $$,
  'after every attempt the audit log is exactly as it was');

-- The private helpers behind the RPCs are not callable by the API roles (PUBLIC's default revoked).
select is_empty(
  $$ select format('%s by %s', f, r)
     from unnest(array['private.require_support()', 'private.held_message(uuid)', 'private.trg_append_only()']::regprocedure[]) f,
            unnest(array['anon', 'authenticated', 'service_role']) r
     where has_function_privilege(r, f, 'execute') $$,
  'private.require_support(), private.held_message() and the audit trigger function are executable by no API role');

select * from finish();
rollback;
