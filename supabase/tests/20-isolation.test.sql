-- Landlord isolation (issue 5): every table in public and every RPC, acted on by
--   * the owner landlord (Olivia),
--   * a second landlord who shares a tenant phone with her (Simon: Shirley rents from both),
--   * a hostile landlord (Harriet) who adds Olivia's tenant's phone to a tenant and lease of her
--     own to capture his messages,
--   * a landlord who has not opted in (Dora: her tenant's messages are held, even from her),
--   * anon, and an authenticated user with no user_profiles row.
-- Allowed -> results_eq / is; filtered -> is_empty (or 0 rows affected); refused -> throws_ok
-- with the code: 42501 privilege, P0002 another landlord's conversation (exactly like a
-- non-existent id).
begin;
select plan(211);

-- Setup (postgres) ----------------------------------------------------------------------------
select tests.create_supabase_user('iso_owner');
select tests.create_supabase_user('iso_second');
select tests.create_supabase_user('iso_hostile');
select tests.create_supabase_user('iso_disabled');
select tests.create_supabase_user('iso_noprofile');

insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at) values
  (tests.get_supabase_uid('iso_owner'), 'Olivia Owner', true, now()),
  (tests.get_supabase_uid('iso_second'), 'Simon Second', true, now()),
  (tests.get_supabase_uid('iso_hostile'), 'Harriet Hostile', true, now()),
  (tests.get_supabase_uid('iso_disabled'), 'Dora Disabled', false, null);

insert into public.properties (id, user_id, address) values
  ('a0000000-0000-4000-8000-000000000001', tests.get_supabase_uid('iso_owner'), '1 Owner Road'),
  ('a0000000-0000-4000-8000-000000000011', tests.get_supabase_uid('iso_second'), '2 Second Street'),
  ('a0000000-0000-4000-8000-000000000021', tests.get_supabase_uid('iso_disabled'), '3 Dormant Lane');

insert into public.tenants (id, user_id, name, phone) values
  ('b0000000-0000-4000-8000-000000000001', tests.get_supabase_uid('iso_owner'), 'Victor Victim', '+44 7700 900601'),
  ('b0000000-0000-4000-8000-000000000002', tests.get_supabase_uid('iso_owner'), 'Shirley Shared', '07700 900602'),
  ('b0000000-0000-4000-8000-000000000012', tests.get_supabase_uid('iso_second'), 'Shirley S.', '+447700900602'),
  ('b0000000-0000-4000-8000-000000000013', tests.get_supabase_uid('iso_second'), 'Sid Solo', '+44 7700 900603'),
  ('b0000000-0000-4000-8000-000000000021', tests.get_supabase_uid('iso_disabled'), 'Dan Dormant', '07700 900604');

insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'active', '2025-01-01'),
  ('c0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000001', 'active', '2025-02-01'),
  ('c0000000-0000-4000-8000-000000000012', 'b0000000-0000-4000-8000-000000000012', 'a0000000-0000-4000-8000-000000000011', 'active', '2025-03-01'),
  ('c0000000-0000-4000-8000-000000000013', 'b0000000-0000-4000-8000-000000000013', 'a0000000-0000-4000-8000-000000000011', 'active', '2025-04-01'),
  ('c0000000-0000-4000-8000-000000000021', 'b0000000-0000-4000-8000-000000000021', 'a0000000-0000-4000-8000-000000000021', 'active', '2025-05-01');

-- Retired multi-WABA accounts (phase 3: read-only for landlords).
insert into public.whatsapp_accounts (id, user_id, waba_id, phone_number_id, status) values
  ('d0000000-0000-4000-8000-000000000001', tests.get_supabase_uid('iso_owner'), 'iso-waba-owner', 'iso-pn-owner', 'migrated_to_centralized'),
  ('d0000000-0000-4000-8000-000000000011', tests.get_supabase_uid('iso_second'), 'iso-waba-second', 'iso-pn-second', 'disconnected');

-- Olivia's multi-WABA history (user_id, no landlord_id).
insert into public.whatsapp_messages (user_id, wamid, from_phone, to_phone, direction, body, status) values
  (tests.get_supabase_uid('iso_owner'), 'wamid.iso.legacy', '447700900601', '442079460001', 'incoming', 'old history', 'read');

-- Both landlords already wrote to Shirley (she confirmed both); her replies (context.id) say which one she answers.
select tests.link('iso_owner', '447700900602');
select tests.link('iso_second', '447700900602');
select tests.register_template('hello_tenant', 'en', 1);
insert into public.whatsapp_conversations (id, landlord_id, tenant_id, tenant_phone, property_id) values
  ('e0000000-0000-4000-8000-000000000002', tests.get_supabase_uid('iso_owner'), 'b0000000-0000-4000-8000-000000000002', '447700900602', 'a0000000-0000-4000-8000-000000000001'),
  ('e0000000-0000-4000-8000-000000000012', tests.get_supabase_uid('iso_second'), 'b0000000-0000-4000-8000-000000000012', '447700900602', 'a0000000-0000-4000-8000-000000000011');
insert into public.whatsapp_messages (wamid, direction, is_from_tenant, type, body, landlord_signature, status, routing_status,
                                      outbound_kind, landlord_id, tenant_id, conversation_id, tenant_phone, to_phone) values
  ('wamid.iso.out.o602', 'outgoing', false, 'text', 'Rent is due', 'From Olivia Owner via ZenRent:', 'sent', 'outbound', 'text',
   tests.get_supabase_uid('iso_owner'), 'b0000000-0000-4000-8000-000000000002', 'e0000000-0000-4000-8000-000000000002', '447700900602', '447700900602'),
  ('wamid.iso.out.s602', 'outgoing', false, 'text', 'Parking fee', 'From Simon Second via ZenRent:', 'sent', 'outbound', 'text',
   tests.get_supabase_uid('iso_second'), 'b0000000-0000-4000-8000-000000000012', 'e0000000-0000-4000-8000-000000000012', '447700900602', '447700900602');

-- Inbound traffic, routed by the service role ------------------------------------------------
select tests.authenticate_as_service_role();
select is(public.route_inbound_message(tests.text_message('wamid.iso.1', '447700900601', 'Hello Olivia')) ->> 'routing_status',
          'delivered', 'service role: a tenant of one landlord is delivered');
select is(public.route_inbound_message(tests.text_message('wamid.iso.2a', '447700900602', 'To Olivia', reply_to => 'wamid.iso.out.o602')) ->> 'landlord_id',
          tests.get_supabase_uid('iso_owner')::text, 'service role: the shared tenant replying to Olivia reaches Olivia');
select is(public.route_inbound_message(tests.text_message('wamid.iso.2b', '447700900602', 'To Simon', reply_to => 'wamid.iso.out.s602')) ->> 'landlord_id',
          tests.get_supabase_uid('iso_second')::text, 'service role: the shared tenant replying to Simon reaches Simon');
select is(public.route_inbound_message(tests.text_message('wamid.iso.2c', '447700900602', 'To whom?')) ->> 'routing_status',
          'ambiguous', 'service role: the shared tenant writing afresh is held as ambiguous');
select is(public.route_inbound_message(tests.text_message('wamid.iso.3', '447700900603', 'Hi Simon')) ->> 'routing_status',
          'delivered', 'service role: Simon''s own tenant is delivered');
select is(public.route_inbound_message(tests.text_message('wamid.iso.4', '447700900699', 'Who is this?')) ->> 'routing_status',
          'unknown_sender', 'service role: an unknown phone is held as unknown_sender');
select is(public.route_inbound_message(tests.text_message('wamid.iso.5', '447700900604', 'Hi Dora')) ->> 'routing_status',
          'landlord_disabled', 'service role: the tenant of a landlord not opted in is held as landlord_disabled');
reset role;

-- Owner landlord (Olivia) ------------------------------------------------------------------
select tests.authenticate_as('iso_owner');

-- user_profiles
select results_eq($$ select full_name from public.user_profiles $$, array['Olivia Owner'],
  'owner reads her own profile and only it');
select is_empty(format('select 1 from public.user_profiles where id = %L', tests.get_supabase_uid('iso_second')),
  'owner cannot read another landlord''s profile');
select is(tests.affected($$ update public.user_profiles set phone = '+44 20 7946 0100' $$), 1,
  'owner updates her own contact details');
select is(tests.affected(format('update public.user_profiles set full_name = %L where id = %L', 'Hacked', tests.get_supabase_uid('iso_second'))), 0,
  'owner cannot update another landlord''s profile (filtered)');
select throws_ok($$ update public.user_profiles set whatsapp_enabled = false $$, '42501', null,
  'owner cannot flip whatsapp_enabled directly');
select throws_ok($$ update public.user_profiles set whatsapp_opted_in_at = now() - interval '1 year' $$, '42501', null,
  'owner cannot backdate whatsapp_opted_in_at directly');
select throws_ok($$ update public.user_profiles set id = gen_random_uuid() $$, '42501', null,
  'owner cannot change her profile id');
select throws_ok(format('insert into public.user_profiles (id, full_name) values (%L, %L)', tests.get_supabase_uid('iso_noprofile'), 'Squatter'),
  '42501', null, 'owner cannot create a profile for another user');
select throws_ok($$ delete from public.user_profiles $$, '42501', null, 'owner cannot delete profiles');

-- properties
select results_eq($$ select id from public.properties $$, array['a0000000-0000-4000-8000-000000000001'::uuid],
  'owner reads her properties and only them');
select is_empty($$ select 1 from public.properties where id = 'a0000000-0000-4000-8000-000000000011' $$,
  'owner cannot read another landlord''s property');
select lives_ok(format('insert into public.properties (id, user_id, address) values (%L, %L, %L)',
  'a0000000-0000-4000-8000-000000000002', tests.get_supabase_uid('iso_owner'), '5 Spare Close'), 'owner adds a property');
select throws_ok(format('insert into public.properties (user_id, address) values (%L, %L)', tests.get_supabase_uid('iso_second'), 'Planted'),
  '42501', null, 'owner cannot add a property in another landlord''s name');
select is(tests.affected($$ update public.properties set city = 'London' where id = 'a0000000-0000-4000-8000-000000000001' $$), 1,
  'owner updates her property');
select is(tests.affected($$ update public.properties set city = 'Nowhere' where id = 'a0000000-0000-4000-8000-000000000011' $$), 0,
  'owner cannot update another landlord''s property (filtered)');
select throws_ok(format('update public.properties set user_id = %L where id = %L', tests.get_supabase_uid('iso_second'), 'a0000000-0000-4000-8000-000000000002'),
  '42501', null, 'owner cannot hand her property to another landlord');
select is(tests.affected($$ delete from public.properties where id = 'a0000000-0000-4000-8000-000000000002' $$), 1,
  'owner deletes her property');
select is(tests.affected($$ delete from public.properties where id = 'a0000000-0000-4000-8000-000000000011' $$), 0,
  'owner cannot delete another landlord''s property (filtered)');

-- tenants
select results_eq($$ select id from public.tenants order by id $$,
  array['b0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000002']::uuid[],
  'owner reads her tenants and only them');
select is_empty($$ select 1 from public.tenants where phone_e164 = '447700900603' or id = 'b0000000-0000-4000-8000-000000000012' $$,
  'owner cannot read other landlords'' tenants, even one sharing her tenant''s phone');
select lives_ok(format('insert into public.tenants (id, user_id, name, phone) values (%L, %L, %L, %L)',
  'b0000000-0000-4000-8000-000000000003', tests.get_supabase_uid('iso_owner'), 'Nina New', '07700 900605'), 'owner adds a tenant');
select throws_ok(format('insert into public.tenants (user_id, name) values (%L, %L)', tests.get_supabase_uid('iso_second'), 'Planted'),
  '42501', null, 'owner cannot add a tenant in another landlord''s name');
select is(tests.affected($$ update public.tenants set email = 'victor@example.test' where id = 'b0000000-0000-4000-8000-000000000001' $$), 1,
  'owner updates her tenant');
select is(tests.affected($$ update public.tenants set phone = '07700 900601' where id = 'b0000000-0000-4000-8000-000000000013' $$), 0,
  'owner cannot update another landlord''s tenant (filtered)');
select throws_ok(format('update public.tenants set user_id = %L where id = %L', tests.get_supabase_uid('iso_second'), 'b0000000-0000-4000-8000-000000000003'),
  '42501', null, 'owner cannot hand her tenant to another landlord');
select is(tests.affected($$ delete from public.tenants where id = 'b0000000-0000-4000-8000-000000000013' $$), 0,
  'owner cannot delete another landlord''s tenant (filtered)');

-- leases
select results_eq($$ select id from public.leases order by id $$,
  array['c0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000002']::uuid[],
  'owner reads the leases of her properties and only them');
select is_empty($$ select 1 from public.leases where id = 'c0000000-0000-4000-8000-000000000012' $$,
  'owner cannot read another landlord''s lease of the shared tenant');
select lives_ok($$ insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0000-4000-8000-000000000003', 'b0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000001', 'pending', '2027-01-01') $$,
  'owner adds a lease joining her tenant and her property');
select throws_ok($$ insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b0000000-0000-4000-8000-000000000013', 'a0000000-0000-4000-8000-000000000001', 'active', '2025-01-01') $$,
  '42501', null, 'owner cannot add a lease of another landlord''s tenant to her property');
select throws_ok($$ insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000011', 'active', '2025-01-01') $$,
  '42501', null, 'owner cannot add a lease of her tenant to another landlord''s property');
select is(tests.affected($$ update public.leases set end_date = '2027-12-31' where id = 'c0000000-0000-4000-8000-000000000003' $$), 1,
  'owner updates her lease');
select is(tests.affected($$ update public.leases set status = 'ended' where id = 'c0000000-0000-4000-8000-000000000012' $$), 0,
  'owner cannot update another landlord''s lease (filtered)');
select throws_ok($$ update public.leases set tenant_id = 'b0000000-0000-4000-8000-000000000013' where id = 'c0000000-0000-4000-8000-000000000003' $$,
  '42501', null, 'owner cannot repoint her lease at another landlord''s tenant');
select is(tests.affected($$ delete from public.leases where id = 'c0000000-0000-4000-8000-000000000003' $$), 1,
  'owner deletes her lease');
select is(tests.affected($$ delete from public.leases where id = 'c0000000-0000-4000-8000-000000000012' $$), 0,
  'owner cannot delete another landlord''s lease (filtered)');
select is(tests.affected($$ delete from public.tenants where id = 'b0000000-0000-4000-8000-000000000003' $$), 1,
  'owner deletes her tenant');

-- whatsapp_accounts (retired: read-only)
select results_eq($$ select id, status from public.whatsapp_accounts $$,
  $$ values ('d0000000-0000-4000-8000-000000000001'::uuid, 'migrated_to_centralized') $$,
  'owner reads her retired WhatsApp account and only it');
select is_empty($$ select 1 from public.whatsapp_accounts where id = 'd0000000-0000-4000-8000-000000000011' $$,
  'owner cannot read another landlord''s account');
select throws_ok(format('insert into public.whatsapp_accounts (user_id, waba_id, phone_number_id, status) values (%L, %L, %L, %L)',
  tests.get_supabase_uid('iso_owner'), 'iso-waba-new', 'iso-pn-new', 'disconnected'), '42501', null,
  'owner cannot connect accounts any more');
select throws_ok($$ update public.whatsapp_accounts set status = 'disconnected' $$, '42501', null,
  'owner cannot update her account');
select throws_ok($$ delete from public.whatsapp_accounts $$, '42501', null, 'owner cannot delete her account');

-- whatsapp_conversations: read own, write nothing
select results_eq($$ select tenant_phone from public.whatsapp_conversations order by tenant_phone $$,
  array['447700900601', '447700900602'], 'owner reads her conversations and only them');
select is_empty($$ select 1 from public.whatsapp_conversations where id = 'e0000000-0000-4000-8000-000000000012' $$,
  'owner cannot read the other landlord''s conversation with their shared tenant');
select throws_ok(format('insert into public.whatsapp_conversations (landlord_id, tenant_phone) values (%L, %L)',
  tests.get_supabase_uid('iso_owner'), '447700900699'), '42501', null, 'owner cannot insert conversations');
select throws_ok($$ update public.whatsapp_conversations set unread_count = 0 $$, '42501', null,
  'owner cannot update conversations directly');
select throws_ok(format('update public.whatsapp_conversations set landlord_id = %L', tests.get_supabase_uid('iso_second')), '42501', null,
  'owner cannot change a conversation''s landlord_id');
select throws_ok($$ update public.whatsapp_conversations set tenant_id = 'b0000000-0000-4000-8000-000000000012' $$, '42501', null,
  'owner cannot change a conversation''s tenant_id');
select throws_ok($$ delete from public.whatsapp_conversations $$, '42501', null, 'owner cannot delete conversations');

-- whatsapp_messages: read own (routed and multi-WABA history), write nothing
select results_eq($$ select wamid from public.whatsapp_messages order by wamid $$,
  array['wamid.iso.1', 'wamid.iso.2a', 'wamid.iso.legacy', 'wamid.iso.out.o602'],
  'owner reads her routed messages and her multi-WABA history, nothing else');
select is_empty($$ select 1 from public.whatsapp_messages where wamid in ('wamid.iso.2c', 'wamid.iso.4', 'wamid.iso.5')
                   or routing_status in ('ambiguous', 'unknown_sender', 'landlord_disabled') or landlord_id is null and user_id is null $$,
  'owner never sees held messages (ambiguous, unknown_sender, landlord_disabled)');
select is_empty($$ select 1 from public.whatsapp_messages where wamid in ('wamid.iso.2b', 'wamid.iso.3', 'wamid.iso.out.s602') $$,
  'owner never sees the other landlord''s messages, even with the shared tenant');
-- select * (supabase-js and supabase-py send select=* by default) works on every table a landlord
-- reads, and returns only her rows; what she must not see is not in these tables at all.
select results_eq($$ select count(*)::int, bool_and(x.id = auth.uid()) from (select * from public.user_profiles) x $$,
  $$ values (1, true) $$, 'owner: select * on user_profiles returns her profile only');
select results_eq($$ select count(*)::int, bool_and(x.user_id = auth.uid()) from (select * from public.properties) x $$,
  $$ values (1, true) $$, 'owner: select * on properties returns her properties only');
select results_eq($$ select count(*)::int, bool_and(x.user_id = auth.uid()) from (select * from public.tenants) x $$,
  $$ values (2, true) $$, 'owner: select * on tenants returns her tenants only');
select results_eq($$ select count(*)::int, bool_and(private.owns_property(x.property_id)) from (select * from public.leases) x $$,
  $$ values (2, true) $$, 'owner: select * on leases returns leases of her properties only');
select results_eq($$ select count(*)::int, bool_and(x.landlord_id = auth.uid()) from (select * from public.whatsapp_conversations) x $$,
  $$ values (2, true) $$, 'owner: select * on whatsapp_conversations returns her conversations only');
select results_eq($$ select x.wamid from (select * from public.whatsapp_messages) x order by x.wamid $$,
  array['wamid.iso.1', 'wamid.iso.2a', 'wamid.iso.legacy', 'wamid.iso.out.o602'],
  'owner: select * on whatsapp_messages returns her messages only');
select throws_ok($$ select routing_metadata from public.whatsapp_messages $$, '42703', null,
  'routing_metadata (it names the other candidate landlords) is not a column of whatsapp_messages');
select throws_ok($$ select raw from public.whatsapp_messages $$, '42703', null, 'raw is not a column of whatsapp_messages');
select throws_ok($$ select * from private.whatsapp_message_details $$, '42501', null,
  'owner cannot read private.whatsapp_message_details (routing metadata and raw)');
select is(tests.refusal_of('select * from public.list_held_messages()'), '42501 support_only',
  'owner cannot list held messages with their candidates');
select throws_ok(format('insert into public.whatsapp_messages (landlord_id, direction, body) values (%L, %L, %L)',
  tests.get_supabase_uid('iso_owner'), 'outgoing', 'sneaky'), '42501', null, 'owner cannot insert messages directly');
select throws_ok($$ update public.whatsapp_messages set body = 'edited' where wamid = 'wamid.iso.1' $$, '42501', null,
  'owner cannot update messages directly');
select throws_ok(format('update public.whatsapp_messages set landlord_id = %L where wamid = %L', tests.get_supabase_uid('iso_owner'), 'wamid.iso.2c'),
  '42501', null, 'owner cannot claim a held message by setting landlord_id');
select throws_ok($$ update public.whatsapp_messages set tenant_id = null where wamid = 'wamid.iso.1' $$, '42501', null,
  'owner cannot change a message''s tenant_id');
select throws_ok($$ update public.whatsapp_messages set routing_status = 'delivered' where wamid = 'wamid.iso.2c' $$, '42501', null,
  'owner cannot change a message''s routing_status');
select throws_ok($$ delete from public.whatsapp_messages where wamid = 'wamid.iso.1' $$, '42501', null,
  'owner cannot delete messages');

-- private: nothing readable or callable beyond the helpers policies need
select throws_ok($$ select * from private.tenant_landlord_routing $$, '42501', null, 'owner cannot read the routing table');
select throws_ok($$ select * from private.tenant_landlord_routing_source $$, '42501', null, 'owner cannot read the routing source view');
select throws_ok($$ select * from private.phone_preferences $$, '42501', null, 'owner cannot read phone preferences');
select throws_ok($$ select * from private.whatsapp_settings $$, '42501', null, 'owner cannot read WhatsApp settings');
select throws_ok($$ insert into realtime.messages (topic, extension, event, payload, private)
                   values ('landlord:' || auth.uid(), 'broadcast', 'message', '{}', true) $$, '42501', null,
  'owner cannot send on her own topic (nobody sends from a client)');
select throws_ok($$ select * from private.pending_message_statuses $$, '42501', null, 'owner cannot read pending statuses');
select throws_ok($$ select * from private.webhook_errors $$, '42501', null, 'owner cannot read webhook errors');
select throws_ok($$ select private.is_opted_out('447700900602') $$, '42501', null, 'owner cannot ask whether a phone opted out');
select throws_ok($$ select private.routing_sync_pair('447700900602', gen_random_uuid()) $$, '42501', null,
  'owner cannot run security definer routing internals');
select throws_ok($$ select private.current_landlord() $$, '42501', null, 'owner cannot call RPC internals');
select throws_ok($$ select private.queue_system_reply('447700900601', 'spam', 'x') $$, '42501', null,
  'owner cannot queue system replies');

-- service-role RPCs
select throws_ok($$ select public.route_inbound_message(tests.text_message('wamid.iso.x', '447700900601')) $$, '42501', null,
  'owner cannot execute route_inbound_message');
select throws_ok($$ select public.ingest_whatsapp_webhook('{"object":"whatsapp_business_account","entry":[]}') $$, '42501', null,
  'owner cannot execute ingest_whatsapp_webhook');
select throws_ok($$ select public.record_message_status('wamid.iso.out.o602', 'read', now()) $$, '42501', null,
  'owner cannot execute record_message_status');
select throws_ok($$ select public.configure_whatsapp('{"default_country":"US"}') $$, '42501', null,
  'owner cannot execute configure_whatsapp');
select throws_ok($$ select public.refresh_tenant_landlord_routing() $$, '42501', null,
  'owner cannot execute refresh_tenant_landlord_routing');
select throws_ok($$ select * from public.claim_outbound_messages(10) $$, '42501', null,
  'owner cannot execute claim_outbound_messages');
select throws_ok($$ select public.complete_outbound_message(gen_random_uuid(), 'wamid.x') $$, '42501', null,
  'owner cannot execute complete_outbound_message');
select throws_ok($$ select public.reconcile_stuck_outbound(1) $$, '42501', null,
  'owner cannot execute reconcile_stuck_outbound');
select is_empty($$ select 1 from realtime.messages $$,
  'owner reads no broadcast row outside a topic she joined');

-- landlord RPCs on her own conversations
select is(public.set_whatsapp_opt_in(true) ->> 'whatsapp_enabled', 'true', 'owner: set_whatsapp_opt_in works for her');
select is(public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000001'), tests.conversation_id('iso_owner', '447700900601'),
  'owner: start_whatsapp_conversation returns her existing conversation with her tenant');
select lives_ok(format('select public.mark_conversation_read(%L)', tests.conversation_id('iso_owner', '447700900601')),
  'owner: mark_conversation_read on her conversation');
select is((select unread_count from public.whatsapp_conversations where tenant_phone = '447700900601'), 0,
  'owner: her conversation is read');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'archived'),
  'owner: set_conversation_status on her conversation');
select is((select status from public.whatsapp_conversations where tenant_phone = '447700900601'), 'archived',
  'owner: her conversation is archived');
select isnt(public.send_whatsapp_message(tests.conversation_id('iso_owner', '447700900602'), 'Thanks Shirley'), null,
  'owner: send_whatsapp_message in her conversation queues a message');
select results_eq($$ select body, landlord_signature, status from public.whatsapp_messages where wamid is null and direction = 'outgoing' $$,
  $$ values ('Thanks Shirley', 'From Olivia Owner via ZenRent:', 'queued') $$,
  'owner sees her queued reply (body without prefix, signature apart)');
select isnt(public.send_whatsapp_template(tests.conversation_id('iso_owner', '447700900602'), 'rent_reminder', 'en_GB', '["Flat 2", "1 May"]'), null,
  'owner: send_whatsapp_template in her conversation queues a template');
select lives_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'active'),
  'owner: reactivates her conversation');
reset role;

-- Second landlord (Simon), who shares Shirley's phone with Olivia -------------------------
select tests.authenticate_as('iso_second');
select results_eq($$ select wamid from public.whatsapp_messages order by wamid $$,
  array['wamid.iso.2b', 'wamid.iso.3', 'wamid.iso.out.s602'],
  'second landlord reads his own messages only');
select is_empty($$ select 1 from public.whatsapp_messages where tenant_phone = '447700900602' and landlord_id is distinct from auth.uid() $$,
  'second landlord sees none of Olivia''s or the held messages of the shared tenant');
select results_eq($$ select id from public.whatsapp_conversations where tenant_phone = '447700900602' $$,
  array['e0000000-0000-4000-8000-000000000012'::uuid], 'second landlord sees only his own conversation with the shared tenant');
select results_eq($$ select id from public.tenants where phone_e164 = '447700900602' $$,
  array['b0000000-0000-4000-8000-000000000012'::uuid], 'second landlord sees only his own tenant record for the shared phone');
select is_empty($$ select 1 from public.user_profiles where full_name = 'Olivia Owner' $$,
  'second landlord cannot read Olivia''s profile');
select is_empty($$ select 1 from public.properties where id = 'a0000000-0000-4000-8000-000000000001' $$,
  'second landlord cannot read Olivia''s property');
select is_empty($$ select 1 from public.leases where id = 'c0000000-0000-4000-8000-000000000002' $$,
  'second landlord cannot read Olivia''s lease with the shared tenant');
select is_empty($$ select 1 from public.whatsapp_accounts where id = 'd0000000-0000-4000-8000-000000000001' $$,
  'second landlord cannot read Olivia''s account');
select is(tests.refusal_of($$ select public.send_whatsapp_message('e0000000-0000-4000-8000-000000000002', 'hi') $$), 'P0002 not_found',
  'second landlord: send_whatsapp_message on Olivia''s conversation is not found');
select is(tests.refusal_of($$ select public.send_whatsapp_template('e0000000-0000-4000-8000-000000000002', 'rent_reminder', 'en') $$), 'P0002 not_found',
  'second landlord: send_whatsapp_template on Olivia''s conversation is not found');
select is(tests.refusal_of($$ select public.mark_conversation_read('e0000000-0000-4000-8000-000000000002') $$), 'P0002 not_found',
  'second landlord: mark_conversation_read on Olivia''s conversation is not found');
select is(tests.refusal_of($$ select public.set_conversation_status('e0000000-0000-4000-8000-000000000002', 'blocked') $$), 'P0002 not_found',
  'second landlord: set_conversation_status on Olivia''s conversation is not found');
select is(tests.refusal_of($$ select public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000002') $$), 'P0002 not_found',
  'second landlord: start_whatsapp_conversation with Olivia''s record of the shared tenant is not found');
select is(public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000012'), 'e0000000-0000-4000-8000-000000000012'::uuid,
  'second landlord: start_whatsapp_conversation with his own record of the shared tenant');
reset role;
select is((select status from public.whatsapp_conversations where id = 'e0000000-0000-4000-8000-000000000002'), 'active',
  'Olivia''s conversation is untouched by the second landlord');

-- Hostile landlord (Harriet) adds Victor's phone to a tenant of her own ---------------------
select tests.authenticate_as('iso_hostile');
select lives_ok(format('insert into public.properties (id, user_id, address) values (%L, %L, %L)',
  'a0000000-0000-4000-8000-000000000031', auth.uid(), '6 Trap Street'), 'hostile landlord adds a property');
select lives_ok(format('insert into public.tenants (id, user_id, name, phone) values (%L, %L, %L, %L)',
  'b0000000-0000-4000-8000-000000000031', auth.uid(), 'Victor (captured)', '07700 900601'),
  'hostile landlord adds a tenant with Olivia''s tenant''s phone');
select lives_ok($$ insert into public.leases (id, tenant_id, property_id, status, start_date) values
  ('c0000000-0000-4000-8000-000000000031', 'b0000000-0000-4000-8000-000000000031', 'a0000000-0000-4000-8000-000000000031', 'active', '2026-01-01') $$,
  'hostile landlord adds an active lease for that tenant');
select is((select phone_e164 from public.tenants where id = 'b0000000-0000-4000-8000-000000000031'), '447700900601',
  'the hostile tenant''s phone normalises to Victor''s');
select throws_ok($$ insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000031', 'active', '2026-01-01') $$,
  '42501', null, 'hostile landlord cannot lease her property to Olivia''s tenant');
select throws_ok($$ insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b0000000-0000-4000-8000-000000000031', 'a0000000-0000-4000-8000-000000000001', 'active', '2026-01-01') $$,
  '42501', null, 'hostile landlord cannot attach her tenant to Olivia''s property');
select throws_ok($$ update public.leases set tenant_id = 'b0000000-0000-4000-8000-000000000001' where id = 'c0000000-0000-4000-8000-000000000031' $$,
  '42501', null, 'hostile landlord cannot repoint her lease at Olivia''s tenant');
select throws_ok($$ update public.leases set property_id = 'a0000000-0000-4000-8000-000000000001' where id = 'c0000000-0000-4000-8000-000000000031' $$,
  '42501', null, 'hostile landlord cannot repoint her lease at Olivia''s property');
select is(tests.affected($$ update public.tenants set phone = '07700 900666' where id = 'b0000000-0000-4000-8000-000000000001' $$), 0,
  'hostile landlord cannot change Olivia''s tenant''s phone (filtered)');
select is(tests.affected($$ update public.leases set status = 'ended' where id = 'c0000000-0000-4000-8000-000000000001' $$), 0,
  'hostile landlord cannot end Olivia''s lease (filtered)');
select isnt(public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000031'), null,
  'hostile landlord may open a conversation with her own tenant');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)',
  tests.conversation_id('iso_hostile', '447700900601'), 'hello_tenant', 'en')), '55000 consent_pending',
  'but no template of hers goes to it: Victor has not confirmed her (ZenRent asks him instead)');
reset role;

-- Victor writes again, after the hostile lease; the hostile template was sent meanwhile.
select tests.authenticate_as_service_role();
select results_eq($$ select to_phone, kind, payload -> 'interactive' -> 'body' ->> 'text' like '%Harriet Hostile%'
                     from public.claim_outbound_messages(1000) where to_phone = '447700900601' $$,
  $$ values ('447700900601', 'interactive', true) $$,
  'service role claims ZenRent''s consent request about the hostile landlord (her own name on it)');
select is(public.complete_outbound_message(
  (select id from public.whatsapp_messages where landlord_id = tests.get_supabase_uid('iso_hostile') and routing_status = 'system'),
  'wamid.iso.out.h601') ->> 'status', 'sent', 'service role records it as sent');
select is(public.route_inbound_message(tests.text_message('wamid.iso.6', '447700900601', 'Boiler broken')) ->> 'landlord_id',
  tests.get_supabase_uid('iso_owner')::text, 'Victor''s next message goes to Olivia, the landlord he confirmed by writing');
select is(public.route_inbound_message(tests.text_message('wamid.iso.7', '447700900601', 'Still broken', 0, 'wamid.iso.out.h601'))
  ->> 'landlord_id', tests.get_supabase_uid('iso_owner')::text,
  'even a reply to the request about the hostile landlord does not reach her');
reset role;
select is_empty($$ select 1 from public.whatsapp_messages
                   where wamid in ('wamid.iso.6', 'wamid.iso.7') and landlord_id is distinct from tests.get_supabase_uid('iso_owner') $$,
  'both carry Olivia as their landlord, nobody else');

select tests.authenticate_as('iso_hostile');
select results_eq($$ select wamid from public.whatsapp_messages $$, array['wamid.iso.out.h601'],
  'hostile landlord sees only the consent request about her, none of Victor''s messages');
select is_empty($$ select 1 from public.whatsapp_messages where direction = 'incoming' $$,
  'hostile landlord has received nothing from Victor');
select results_eq($$ select landlord_id, unread_count, last_inbound_at from public.whatsapp_conversations $$,
  format($f$ values (%L::uuid, 0, null::timestamptz) $f$, auth.uid()),
  'hostile landlord sees only her own, empty conversation');
select is_empty(format('select 1 from public.whatsapp_conversations where id = %L', tests.conversation_id('iso_owner', '447700900601')),
  'hostile landlord cannot select Olivia''s conversation by id');
select is_empty($$ select 1 from public.tenants where id = 'b0000000-0000-4000-8000-000000000001' $$,
  'hostile landlord cannot read Olivia''s tenant');
select throws_ok($$ select * from private.whatsapp_message_details $$, '42501', null,
  'hostile landlord cannot read routing metadata (the candidate list) or raw elements');
select results_eq($$ select count(*)::int from (select * from public.whatsapp_messages) x where x.landlord_id <> auth.uid() $$,
  $$ values (0) $$, 'hostile landlord: select * on messages returns none of anyone else''s');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'hi')), 'P0002 not_found', 'hostile landlord: send_whatsapp_message on Olivia''s conversation is not found');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'hello_tenant', 'en')), 'P0002 not_found', 'hostile landlord: send_whatsapp_template on Olivia''s conversation is not found');
select is(tests.refusal_of(format('select public.mark_conversation_read(%L)', tests.conversation_id('iso_owner', '447700900601'))), 'P0002 not_found', 'hostile landlord: mark_conversation_read on Olivia''s conversation is not found');
select is(tests.refusal_of(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'blocked')), 'P0002 not_found', 'hostile landlord: set_conversation_status on Olivia''s conversation is not found');
select is(tests.refusal_of($$ select public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000001') $$), 'P0002 not_found', 'hostile landlord: start_whatsapp_conversation with Olivia''s tenant is not found');
-- Exactly like an id that does not exist: same code, message and hint, argument checks included.
select is(tests.error_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), '')),
          tests.error_of(format('select public.send_whatsapp_message(%L, %L)', gen_random_uuid(), '')),
  'send_whatsapp_message: Olivia''s conversation and a random id fail identically');
select is(tests.error_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'Bad Name', 'xx')),
          tests.error_of(format('select public.send_whatsapp_template(%L, %L, %L)', gen_random_uuid(), 'Bad Name', 'xx')),
  'send_whatsapp_template: Olivia''s conversation and a random id fail identically');
select is(tests.error_of(format('select public.mark_conversation_read(%L)', tests.conversation_id('iso_owner', '447700900601'))),
          tests.error_of(format('select public.mark_conversation_read(%L)', gen_random_uuid())),
  'mark_conversation_read: Olivia''s conversation and a random id fail identically');
select is(tests.error_of(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'bogus')),
          tests.error_of(format('select public.set_conversation_status(%L, %L)', gen_random_uuid(), 'bogus')),
  'set_conversation_status: Olivia''s conversation and a random id fail identically');
select is(tests.error_of($$ select public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000001') $$),
          tests.error_of(format('select public.start_whatsapp_conversation(%L)', gen_random_uuid())),
  'start_whatsapp_conversation: Olivia''s tenant and a random id fail identically');
select throws_ok($$ select public.route_inbound_message(tests.text_message('wamid.iso.y', '447700900601')) $$, '42501', null,
  'hostile landlord cannot execute route_inbound_message');
select throws_ok($$ select * from private.tenant_landlord_routing where tenant_phone = '447700900601' $$, '42501', null,
  'hostile landlord cannot read the routing table');
reset role;
select results_eq($$ select unread_count, status from public.whatsapp_conversations where id = tests.conversation_id('iso_owner', '447700900601') $$,
  $$ values (2, 'active') $$, 'Olivia''s conversation counts Victor''s two new messages, whatever the hostile landlord did');

-- Olivia writes to Victor; his answer is hers, never the hostile landlord's.
select tests.authenticate_as('iso_owner');
select isnt(public.send_whatsapp_message(tests.conversation_id('iso_owner', '447700900601'), 'Sending the plumber'), null,
  'owner replies to Victor');
reset role;
select tests.authenticate_as_service_role();
select is(public.route_inbound_message(tests.text_message('wamid.iso.8', '447700900601', 'Thanks!')) ->> 'landlord_id',
  tests.get_supabase_uid('iso_owner')::text, 'Victor''s answer reaches Olivia (the landlord he confirmed)');
reset role;
select tests.authenticate_as('iso_hostile');
select is_empty($$ select 1 from public.whatsapp_messages where direction = 'incoming' $$,
  'the hostile landlord still has received nothing from Victor');
reset role;

-- Landlord not opted in (Dora): her tenant's message is held from everyone, her included ----
select tests.authenticate_as('iso_disabled');
select is_empty($$ select 1 from public.whatsapp_messages $$, 'a landlord not opted in does not see her tenant''s held message');
select is_empty($$ select 1 from public.whatsapp_conversations $$, 'a landlord not opted in has no conversation');
select results_eq($$ select id from public.tenants $$, array['b0000000-0000-4000-8000-000000000021'::uuid],
  'a landlord not opted in still reads her tenants');
reset role;

-- Authenticated user with no user_profiles row --------------------------------------------
select tests.authenticate_as('iso_noprofile');
select is_empty($$ select 1 from public.user_profiles $$, 'no-profile user reads no profile');
select is_empty($$ select 1 from public.properties $$, 'no-profile user reads no property');
select is_empty($$ select 1 from public.tenants $$, 'no-profile user reads no tenant');
select is_empty($$ select 1 from public.leases $$, 'no-profile user reads no lease');
select is_empty($$ select 1 from public.whatsapp_accounts $$, 'no-profile user reads no account');
select is_empty($$ select 1 from public.whatsapp_conversations $$, 'no-profile user reads no conversation');
select is_empty($$ select 1 from public.whatsapp_messages $$, 'no-profile user reads no message');
select is(tests.refusal_of($$ select public.set_whatsapp_opt_in(true) $$), '42501 no_landlord_profile',
  'no-profile user: set_whatsapp_opt_in refused');
select throws_ok(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'hi'), '42501', null,
  'no-profile user: send_whatsapp_message refused');
select throws_ok(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'hello_tenant', 'en'), '42501', null,
  'no-profile user: send_whatsapp_template refused');
select throws_ok($$ select public.start_whatsapp_conversation('b0000000-0000-4000-8000-000000000001') $$, '42501', null,
  'no-profile user: start_whatsapp_conversation refused');
select throws_ok(format('select public.mark_conversation_read(%L)', tests.conversation_id('iso_owner', '447700900601')), '42501', null,
  'no-profile user: mark_conversation_read refused');
select throws_ok(format('select public.set_conversation_status(%L, %L)', tests.conversation_id('iso_owner', '447700900601'), 'archived'), '42501', null,
  'no-profile user: set_conversation_status refused');
select throws_ok($$ select * from public.claim_outbound_messages(10) $$, '42501', null,
  'no-profile user: service-role RPCs refused');
select throws_ok($$ select * from private.whatsapp_settings $$, '42501', null, 'no-profile user: private refused');
select throws_ok(format('insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at) values (%L, %L, true, now())',
  auth.uid(), 'Eager'), '42501', null, 'no-profile user cannot create a profile already opted in');
select throws_ok(format('insert into public.user_profiles (id, full_name) values (%L, %L)', gen_random_uuid(), 'Someone'), '42501', null,
  'no-profile user cannot create a profile for another id');
select lives_ok(format('insert into public.user_profiles (id, full_name) values (%L, %L)', auth.uid(), 'Nora Newcomer'),
  'no-profile user creates her own profile');
select results_eq($$ select full_name, whatsapp_enabled from public.user_profiles $$, $$ values ('Nora Newcomer', false) $$,
  'the new profile is hers and not opted in');
reset role;

-- anon: sees nothing, executes nothing ----------------------------------------------------
select tests.clear_authentication();
select throws_ok($$ select 1 from public.user_profiles $$, '42501', null, 'anon cannot read user_profiles');
select throws_ok($$ select 1 from public.properties $$, '42501', null, 'anon cannot read properties');
select throws_ok($$ select 1 from public.tenants $$, '42501', null, 'anon cannot read tenants');
select throws_ok($$ select 1 from public.leases $$, '42501', null, 'anon cannot read leases');
select throws_ok($$ select 1 from public.whatsapp_accounts $$, '42501', null, 'anon cannot read whatsapp_accounts');
select throws_ok($$ select 1 from public.whatsapp_conversations $$, '42501', null, 'anon cannot read whatsapp_conversations');
select throws_ok($$ select 1 from public.whatsapp_messages $$, '42501', null, 'anon cannot read whatsapp_messages');
select throws_ok($$ insert into public.tenants (user_id, name) values (gen_random_uuid(), 'x') $$, '42501', null, 'anon cannot insert');
select throws_ok($$ select public.set_whatsapp_opt_in(true) $$, '42501', null, 'anon cannot execute set_whatsapp_opt_in');
select throws_ok($$ select public.send_whatsapp_message(gen_random_uuid(), 'hi') $$, '42501', null, 'anon cannot execute send_whatsapp_message');
select throws_ok($$ select public.send_whatsapp_template(gen_random_uuid(), 'x', 'en') $$, '42501', null, 'anon cannot execute send_whatsapp_template');
select throws_ok($$ select public.start_whatsapp_conversation(gen_random_uuid()) $$, '42501', null, 'anon cannot execute start_whatsapp_conversation');
select throws_ok($$ select public.mark_conversation_read(gen_random_uuid()) $$, '42501', null, 'anon cannot execute mark_conversation_read');
select throws_ok($$ select public.set_conversation_status(gen_random_uuid(), 'active') $$, '42501', null, 'anon cannot execute set_conversation_status');
select throws_ok($$ select public.route_inbound_message(tests.text_message('wamid.iso.z', '447700900601')) $$, '42501', null, 'anon cannot execute route_inbound_message');
select throws_ok($$ select public.ingest_whatsapp_webhook('{}') $$, '42501', null, 'anon cannot execute ingest_whatsapp_webhook');
select throws_ok($$ select public.record_message_status('w', 'read', now()) $$, '42501', null, 'anon cannot execute record_message_status');
select throws_ok($$ select public.configure_whatsapp('{}') $$, '42501', null, 'anon cannot execute configure_whatsapp');
select throws_ok($$ select public.refresh_tenant_landlord_routing() $$, '42501', null, 'anon cannot execute refresh_tenant_landlord_routing');
select throws_ok($$ select * from public.claim_outbound_messages(1) $$, '42501', null, 'anon cannot execute claim_outbound_messages');
select throws_ok($$ select public.complete_outbound_message(gen_random_uuid(), 'w') $$, '42501', null, 'anon cannot execute complete_outbound_message');
select throws_ok($$ select public.reconcile_stuck_outbound(1) $$, '42501', null, 'anon cannot execute reconcile_stuck_outbound');
select is_empty($$ select 1 from realtime.messages $$, 'anon reads no broadcast row');
select throws_ok($$ select * from private.tenant_landlord_routing $$, '42501', null, 'anon cannot read private');
select throws_ok($$ select private.owns_tenant(gen_random_uuid()) $$, '42501', null, 'anon cannot call even the RLS helpers');
reset role;

-- Structure the above relies on --------------------------------------------------------------
select is_empty($$ select format('%s: %s %s', tablename, cmd, policyname) from pg_policies
                   where schemaname = 'public' and tablename in ('whatsapp_messages', 'whatsapp_conversations') and cmd <> 'SELECT' $$,
  'no insert, update or delete policy on messages or conversations');
select is_empty($$ select format('%s %s', table_name, privilege_type) from information_schema.role_table_grants
                   where grantee = 'authenticated' and table_schema = 'public'
                     and table_name in ('whatsapp_messages', 'whatsapp_conversations') and privilege_type <> 'SELECT' $$,
  'authenticated holds no write privilege on messages or conversations');
select is_empty($$ select p.oid::regprocedure::text from pg_proc p
                   where p.pronamespace = 'private'::regnamespace and p.prosecdef
                     and has_function_privilege('authenticated', p.oid, 'execute')
                     and p.proname not in ('owns_property', 'owns_tenant', 'default_country') $$,
  'authenticated can execute no private security definer function but the RLS helpers');
select is_empty($$ select tablename from pg_publication_tables
                   where pubname = 'supabase_realtime' and schemaname = 'public'
                     and tablename in ('whatsapp_conversations', 'whatsapp_messages') $$,
  'neither inbox table streams through Postgres Changes (they broadcast on private topics instead)');

select * from finish();
rollback;
