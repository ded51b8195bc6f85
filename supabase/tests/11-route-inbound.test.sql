-- public.route_inbound_message(): every routing status with its recorded decision, the
-- ambiguity rules (reply context, the tenant's confirmed landlord, otherwise held + one picker a
-- day; consent and the picker in detail: 40-), a hostile landlord never capturing another landlord's
-- tenant, one conversation per landlord and phone, idempotency, the conversation counters,
-- STOP / START, the courtesy reply, every message type Meta sends, malformed input.
-- Phones 4474002000xx are used only here (the seed uses 447700900xxx).
begin;
select plan(79);

-- Setup (as postgres) ----------------------------------------------------------------------
select tests.create_supabase_user('ri_alice');
select tests.create_supabase_user('ri_bob');
select tests.create_supabase_user('ri_dora');   -- not opted in
select tests.create_supabase_user('ri_hank');   -- hostile: adds Bob's tenant's phone to his own tenants

insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at) values
  (tests.get_supabase_uid('ri_alice'), 'Alice RI', true, now()),
  (tests.get_supabase_uid('ri_bob'), 'Bob RI', true, now()),
  (tests.get_supabase_uid('ri_dora'), 'Dora RI', false, null),
  (tests.get_supabase_uid('ri_hank'), 'Hank RI', true, now());

insert into public.properties (id, user_id, address) values
  ('a0000000-0011-4000-8000-000000000001', tests.get_supabase_uid('ri_alice'), '1 Alice Row'),
  ('a0000000-0011-4000-8000-000000000002', tests.get_supabase_uid('ri_alice'), '2 Alice Row'),
  ('a0000000-0011-4000-8000-000000000003', tests.get_supabase_uid('ri_bob'), '3 Bob Yard'),
  ('a0000000-0011-4000-8000-000000000004', tests.get_supabase_uid('ri_dora'), '4 Dora Dock'),
  ('a0000000-0011-4000-8000-000000000005', tests.get_supabase_uid('ri_hank'), '5 Hank Heights');

insert into public.tenants (id, user_id, name, phone) values
  -- P1 rents two of Alice's properties
  ('b0000000-0011-4000-8000-000000000001', tests.get_supabase_uid('ri_alice'), 'Pat One', '07400 200001'),
  -- P2 rents from Alice and from Bob (legitimately shared)
  ('b0000000-0011-4000-8000-000000000002', tests.get_supabase_uid('ri_alice'), 'Sam Two', '+44 7400 200002'),
  ('b0000000-0011-4000-8000-000000000012', tests.get_supabase_uid('ri_bob'), 'Samuel Two', '07400-200002'),
  ('b0000000-0011-4000-8000-000000000003', tests.get_supabase_uid('ri_dora'), 'Dee Three', '07400 200003'),
  ('b0000000-0011-4000-8000-000000000004', tests.get_supabase_uid('ri_alice'), 'Bo Four', '07400 200004'),
  -- P6 is Bob's tenant; Hank typed the same phone into his own tenant list
  ('b0000000-0011-4000-8000-000000000006', tests.get_supabase_uid('ri_bob'), 'Vic Six', '07400 200006'),
  ('b0000000-0011-4000-8000-000000000016', tests.get_supabase_uid('ri_hank'), 'Not Really Mine', '0044 7400 200 006'),
  ('b0000000-0011-4000-8000-000000000007', tests.get_supabase_uid('ri_alice'), 'Stu Seven', '07400 200007'),
  ('b0000000-0011-4000-8000-000000000008', tests.get_supabase_uid('ri_alice'), 'Ty Eight', '07400 200008'),
  -- P10 rents from Alice and Bob; Bob blocked the phone
  ('b0000000-0011-4000-8000-000000000010', tests.get_supabase_uid('ri_alice'), 'Ten A', '07400 200010'),
  ('b0000000-0011-4000-8000-000000000020', tests.get_supabase_uid('ri_bob'), 'Ten B', '07400 200010');

insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b0000000-0011-4000-8000-000000000001', 'a0000000-0011-4000-8000-000000000001', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000001', 'a0000000-0011-4000-8000-000000000002', 'active', '2025-06-01'),
  ('b0000000-0011-4000-8000-000000000002', 'a0000000-0011-4000-8000-000000000001', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000012', 'a0000000-0011-4000-8000-000000000003', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000003', 'a0000000-0011-4000-8000-000000000004', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000004', 'a0000000-0011-4000-8000-000000000001', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000006', 'a0000000-0011-4000-8000-000000000003', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000016', 'a0000000-0011-4000-8000-000000000005', 'active', '2026-01-01'),
  ('b0000000-0011-4000-8000-000000000007', 'a0000000-0011-4000-8000-000000000002', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000008', 'a0000000-0011-4000-8000-000000000002', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000010', 'a0000000-0011-4000-8000-000000000001', 'active', '2025-01-01'),
  ('b0000000-0011-4000-8000-000000000020', 'a0000000-0011-4000-8000-000000000003', 'active', '2025-01-01');

-- Bob blocked P10; Alice blocked P4.
insert into public.whatsapp_conversations (landlord_id, tenant_phone, status) values
  (tests.get_supabase_uid('ri_bob'), '447400200010', 'blocked'),
  (tests.get_supabase_uid('ri_alice'), '447400200004', 'blocked');

select public.configure_whatsapp('{"phone_number_id": "109990000000011", "display_phone_number": "15550001111"}');

-- Helpers (rolled back with the test) ------------------------------------------------------
create table tests.routed (key text primary key, result jsonb not null);
grant all on tests.routed to service_role;

-- Route as the webhook does and remember the result under a key (the builders are in 00-).
create function tests.route(key text, message jsonb, contact jsonb default null) returns jsonb
language plpgsql set search_path = '' as $$
declare
  r jsonb := tests.route_as_webhook(message, contact,
               '{"display_phone_number": "15550001111", "phone_number_id": "109990000000011"}');
begin
  insert into tests.routed values (key, r) on conflict on constraint routed_pkey do update set result = excluded.result;
  return r;
end
$$;
create function tests.r(key text) returns jsonb language sql stable set search_path = '' as $$
  select x.result from tests.routed x where x.key = r.key
$$;
create function tests.routed_message(key text) returns public.whatsapp_messages language sql stable set search_path = '' as $$
  select m from public.whatsapp_messages m where m.id = (tests.r(key) ->> 'message_id')::uuid
$$;
grant execute on all functions in schema tests to service_role;

-- delivered: one landlord, two properties ---------------------------------------------------
select tests.authenticate_as_service_role();
select tests.route('p1_first', tests.text_message('wamid.RI_P1_1', '447400200001', 'Hello from P1', 600),
                   '{"profile": {"name": "Pat"}, "wa_id": "447400200001"}');
select results_eq(
  $$ select r ->> 'routing_status', (r ->> 'landlord_id')::uuid, (r ->> 'tenant_id')::uuid, (r ->> 'duplicate')::boolean,
            r ->> 'wamid', (r ->> 'conversation_id') is not null
     from tests.r('p1_first') r $$,
  $$ values ('delivered', tests.get_supabase_uid('ri_alice'), 'b0000000-0011-4000-8000-000000000001'::uuid, false,
             'wamid.RI_P1_1', true) $$,
  'one candidate landlord, opted in: delivered to that landlord, result carries the ids');
select results_eq(
  $$ select m.direction, m.is_from_tenant, m.type, m.body, m.from_phone, m.tenant_phone, m.to_phone, m.contact_name,
            m.status, m.sent_at, m.property_id, m.conversation_id
     from tests.routed_message('p1_first') m $$,
  $$ values ('incoming', true, 'text', 'Hello from P1', '447400200001', '447400200001', '15550001111', 'Pat',
             'received', tests.at(600), 'a0000000-0011-4000-8000-000000000002'::uuid, (tests.r('p1_first') ->> 'conversation_id')::uuid) $$,
  'the message is stored with sender, contact name, time, and the most recent lease''s property');
select results_eq(
  $$ select tests.routing_metadata(m.id) ->> 'rule', jsonb_array_length(tests.routing_metadata(m.id) -> 'candidates'),
            tests.routing_metadata(m.id) -> 'candidates' -> 0 ->> 'landlord_id', tests.routing_metadata(m.id) ->> 'phone_number_id'
     from tests.routed_message('p1_first') m $$,
  $$ values ('single_candidate', 1, tests.get_supabase_uid('ri_alice')::text, '109990000000011') $$,
  'routing_metadata records the rule and the one candidate (two leases of one landlord are one candidate)');
select results_eq(
  $$ select c.unread_count, c.last_message_at, c.last_inbound_at, c.last_message_preview, c.status, c.tenant_id
     from tests.conversation('ri_alice', '447400200001') c $$,
  $$ values (1, tests.at(600), tests.at(600), 'Hello from P1', 'active', 'b0000000-0011-4000-8000-000000000001'::uuid) $$,
  'the conversation is created with unread 1, last_message_at, last_inbound_at and preview');

select tests.route('p1_second', tests.text_message('wamid.RI_P1_2', '447400200001', 'Second', 300));
select is(tests.r('p1_second') ->> 'conversation_id', tests.r('p1_first') ->> 'conversation_id',
  'a second message from the same phone lands in the same conversation');
select is((select count(*)::int from public.whatsapp_conversations c
           where c.landlord_id = tests.get_supabase_uid('ri_alice') and c.tenant_phone = '447400200001'), 1,
  'several properties of one landlord are one conversation');
select results_eq(
  $$ select c.unread_count, c.last_message_at, c.last_inbound_at, c.last_message_preview from tests.conversation('ri_alice', '447400200001') c $$,
  $$ values (2, tests.at(300), tests.at(300), 'Second') $$,
  'a newer message bumps unread_count, last_message_at, last_inbound_at and the preview');

-- A late-arriving older message counts as unread but does not move the clock or the preview.
select tests.route('p1_old', tests.text_message('wamid.RI_P1_0', '447400200001', 'Sent earlier, arrived late', 900));
select results_eq(
  $$ select c.unread_count, c.last_message_at, c.last_inbound_at, c.last_message_preview from tests.conversation('ri_alice', '447400200001') c $$,
  $$ values (3, tests.at(300), tests.at(300), 'Second') $$,
  'an older message arriving late is unread but does not move last_message_at, last_inbound_at or the preview');

-- Reactions are attached to their target and not counted unread.
select tests.route('p1_reaction', jsonb_build_object('from', '447400200001', 'id', 'wamid.RI_P1_R', 'timestamp', tests.unix_ts(200),
  'type', 'reaction', 'reaction', jsonb_build_object('message_id', 'wamid.RI_P1_1', 'emoji', '👍')));
select results_eq(
  $$ select m.type, m.body, m.reply_to_wamid, m.reply_to_message_id, m.routing_status from tests.routed_message('p1_reaction') m $$,
  $$ values ('reaction', '👍', 'wamid.RI_P1_1', (tests.r('p1_first') ->> 'message_id')::uuid, 'delivered') $$,
  'a reaction is stored with its emoji and attached to the message it reacts to');
select results_eq(
  $$ select c.unread_count, c.last_message_preview from tests.conversation('ri_alice', '447400200001') c $$,
  $$ values (3, 'Second') $$,
  'a reaction is not counted unread and does not replace the preview');

-- Media preview, long text, archived conversation reopening.
select tests.route('p1_image', jsonb_build_object('from', '447400200001', 'id', 'wamid.RI_P1_I', 'timestamp', tests.unix_ts(100),
  'type', 'image', 'image', jsonb_build_object('id', 'MEDIA1', 'mime_type', 'image/jpeg')));
select is((tests.conversation('ri_alice', '447400200001')).last_message_preview, '[image]', 'a media message without caption previews as [type]');
update public.whatsapp_conversations set status = 'archived'
  where id = (tests.r('p1_first') ->> 'conversation_id')::uuid;
select tests.route('p1_long', tests.text_message('wamid.RI_P1_L', '447400200001', repeat('x', 300), 50));
select results_eq(
  $$ select c.status, c.unread_count, length(c.last_message_preview), c.last_message_at from tests.conversation('ri_alice', '447400200001') c $$,
  $$ values ('active', 5, 160, tests.at(50)) $$,
  'an archived conversation reopens on a new tenant message; the preview is cut to 160 characters');

-- Idempotency -------------------------------------------------------------------------------
select set_config('tests.messages_before', (select count(*) from public.whatsapp_messages)::text, true);
select tests.route('p1_first_again', tests.text_message('wamid.RI_P1_1', '447400200001', 'Redelivered with other content', 10));
select results_eq(
  $$ select (r ->> 'duplicate')::boolean, r ->> 'message_id', r ->> 'conversation_id', r ->> 'routing_status', r ->> 'landlord_id'
     from tests.r('p1_first_again') r $$,
  $$ select true, r ->> 'message_id', r ->> 'conversation_id', r ->> 'routing_status', r ->> 'landlord_id'
     from tests.r('p1_first') r $$,
  'a redelivered wamid returns the original result with duplicate = true');
select is((select count(*) from public.whatsapp_messages)::text, current_setting('tests.messages_before'),
  'a redelivery writes no message');
select results_eq(
  $$ select c.unread_count, c.last_message_at, (tests.routed_message('p1_first')).body from tests.conversation('ri_alice', '447400200001') c $$,
  $$ values (5, tests.at(50), 'Hello from P1') $$,
  'a redelivery changes neither the counters nor the stored message');

-- landlord_disabled --------------------------------------------------------------------------
select tests.route('p3', tests.text_message('wamid.RI_P3_1', '447400200003', 'Hello Dora'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.tenant_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule',
            tests.routing_metadata(m.id) -> 'candidates' -> 0 ->> 'landlord_id', (tests.routing_metadata(m.id) -> 'candidates' -> 0 ->> 'enabled')::boolean
     from tests.routed_message('p3') m $$,
  $$ values ('landlord_disabled', null::uuid, null::uuid, null::uuid, 'single_candidate:landlord_not_opted_in',
             tests.get_supabase_uid('ri_dora')::text, false) $$,
  'a landlord not opted in: held as landlord_disabled, no landlord on the row, the candidate recorded');
select is_empty($$ select 1 from public.whatsapp_conversations c where c.landlord_id = tests.get_supabase_uid('ri_dora') $$,
  'no conversation is opened for a landlord not opted in');

-- blocked -------------------------------------------------------------------------------------
select tests.route('p4', tests.text_message('wamid.RI_P4_1', '447400200004', 'Let me in'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule',
            tests.routing_metadata(m.id) -> 'candidates' -> 0 ->> 'conversation_status'
     from tests.routed_message('p4') m $$,
  $$ values ('blocked', null::uuid, null::uuid, 'blocked_by_every_candidate', 'blocked') $$,
  'a phone blocked by its only landlord: held as blocked, the decision recorded');
select results_eq($$ select c.status, c.unread_count, c.last_message_at from tests.conversation('ri_alice', '447400200004') c $$,
  $$ values ('blocked', 0, null::timestamptz) $$, 'the blocked conversation is not touched');
select tests.route('p10', tests.text_message('wamid.RI_P10_1', '447400200010', 'For Alice'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'rule', jsonb_array_length(tests.routing_metadata(m.id) -> 'candidates')
     from tests.routed_message('p10') m $$,
  $$ values ('ambiguous', null::uuid, 'several_landlords', 2) $$,
  'a landlord blocking a shared phone hands nothing to the other candidate: held as ambiguous, both recorded');

-- unknown_sender and the courtesy reply --------------------------------------------------------
select tests.route('p5_1', tests.text_message('wamid.RI_P5_1', '447400200005', 'Who is this?'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule', tests.routing_metadata(m.id) -> 'candidates'
     from tests.routed_message('p5_1') m $$,
  $$ values ('unknown_sender', null::uuid, null::uuid, 'no_active_lease_for_phone', '[]'::jsonb) $$,
  'no active lease for the phone: stored as unknown_sender, no candidates');
select results_eq(
  $$ select m.body, m.status, m.to_phone, m.landlord_id, m.landlord_signature from public.whatsapp_messages m
     where m.tenant_phone = '447400200005' and m.routing_status = 'system' $$,
  $$ values ('Hello! This is ZenRent. We could not match this number to a tenancy, so your message has not been passed on. Please ask your landlord to add this number to your tenant profile.',
             'queued', '447400200005', null::uuid, null::text) $$,
  'a courtesy reply is queued from ZenRent itself (no landlord, no signature)');
select tests.route('p5_2', tests.text_message('wamid.RI_P5_2', '447400200005', 'Hello??'));
select is(tests.system_replies('447400200005', 'courtesy'), 1, 'the courtesy reply goes out at most once a day');
select tests.route('p5_dup', tests.text_message('wamid.RI_P5_1', '447400200005', 'Who is this?'));
reset role;
update private.phone_preferences set last_courtesy_reply_at = now() - interval '25 hours' where phone = '447400200005';
select public.configure_whatsapp('{"courtesy_reply_text": "ZenRent: number not recognised."}');
select tests.authenticate_as_service_role();
select tests.route('p5_dup2', tests.text_message('wamid.RI_P5_1', '447400200005', 'Who is this?'));
select is(tests.system_replies('447400200005', 'courtesy'), 1, 'a redelivered message queues no courtesy reply, even a day later');
select tests.route('p5_3', tests.text_message('wamid.RI_P5_3', '447400200005', 'A day later'));
select results_eq(
  $$ select count(*)::int, count(*) filter (where m.body = 'ZenRent: number not recognised.')::int
     from public.whatsapp_messages m where m.tenant_phone = '447400200005' and tests.routing_metadata(m.id) ->> 'reason' = 'courtesy' $$,
  $$ values (2, 1) $$,
  'a day later a new courtesy reply is queued, with the configured text');

-- ambiguous: a phone with two landlords ---------------------------------------------------------
select tests.route('p2_1', tests.text_message('wamid.RI_P2_1', '447400200002', 'Hi, who gets this?', 500));
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.tenant_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule',
            (select array_agg(e ->> 'landlord_id' order by e ->> 'landlord_id') from jsonb_array_elements(tests.routing_metadata(m.id) -> 'candidates') e)
     from tests.routed_message('p2_1') m $$,
  $$ values ('ambiguous', null::uuid, null::uuid, null::uuid, 'several_landlords',
             (select array_agg(u::text order by u::text) from unnest(array[tests.get_supabase_uid('ri_alice'), tests.get_supabase_uid('ri_bob')]) u)) $$,
  'two landlords, no reply context, no recent outbound: held as ambiguous with both candidates recorded');
select is(tests.system_replies('447400200002', 'picker'), 1, 'the tenant is sent the picker');
select tests.route('p2_2', tests.text_message('wamid.RI_P2_2', '447400200002', 'Hello?', 450));
select results_eq($$ select (tests.routed_message('p2_2')).routing_status, tests.system_replies('447400200002', 'picker') $$,
  $$ values ('ambiguous', 1) $$, 'the next ambiguous message queues no second picker that day');
select is_empty($$ select 1 from public.whatsapp_conversations c where c.tenant_phone = '447400200002' $$,
  'an ambiguous message opens no conversation for anyone');

-- A recent outbound in a conversation the tenant never wrote in does not decide.
reset role;
select tests.outbound('ri_alice', '447400200002', 'wamid.RI_OUT_A2', 7200);
select tests.authenticate_as_service_role();
select tests.route('p2_3', tests.text_message('wamid.RI_P2_3', '447400200002', 'Still me'));
select results_eq($$ select m.routing_status, tests.routing_metadata(m.id) ->> 'rule' from tests.routed_message('p2_3') m $$,
  $$ values ('ambiguous', 'several_landlords') $$,
  'an outbound message alone (no prior inbound in that conversation) does not pick the landlord');

-- Replying to a landlord's message picks that landlord.
select tests.route('p2_4', tests.text_message('wamid.RI_P2_4', '447400200002', 'Yes, Tuesday is fine', 0, 'wamid.RI_OUT_A2'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, m.tenant_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule', m.reply_to_wamid,
            m.reply_to_message_id
     from tests.routed_message('p2_4') m $$,
  $$ values ('delivered', tests.get_supabase_uid('ri_alice'), 'b0000000-0011-4000-8000-000000000002'::uuid,
             (tests.conversation('ri_alice', '447400200002')).id, 'reply_context', 'wamid.RI_OUT_A2',
             (select m.id from public.whatsapp_messages m where m.wamid = 'wamid.RI_OUT_A2')) $$,
  'a reply (context.id) to Alice''s outbound message goes to Alice''s conversation');

-- A reply decides that message only: the next plain one is ambiguous again (the old "recent
-- outbound" rule is gone: a landlord could buy it by writing every day).
select tests.route('p2_5', tests.text_message('wamid.RI_P2_5', '447400200002', 'One more thing'));
select results_eq($$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'rule' from tests.routed_message('p2_5') m $$,
  $$ values ('ambiguous', null::uuid, 'several_landlords') $$,
  'Alice''s recent outbound in a conversation the tenant wrote in does not pick her');

reset role;
select tests.outbound('ri_bob', '447400200002', 'wamid.RI_OUT_B2', 3600);
select tests.authenticate_as_service_role();
select tests.route('p2_6', tests.text_message('wamid.RI_P2_6', '447400200002', 'And another'));
select results_eq($$ select m.landlord_id, tests.routing_metadata(m.id) ->> 'rule' from tests.routed_message('p2_6') m $$,
  $$ values (null::uuid, 'several_landlords') $$,
  'nor does Bob''s');
select tests.route('p2_7', tests.text_message('wamid.RI_P2_7', '447400200002', 'Bob: parking is fine', 0, 'wamid.RI_OUT_B2'));
select results_eq($$ select m.landlord_id, m.conversation_id, tests.routing_metadata(m.id) ->> 'rule' from tests.routed_message('p2_7') m $$,
  $$ values (tests.get_supabase_uid('ri_bob'), (tests.conversation('ri_bob', '447400200002')).id, 'reply_context') $$,
  'a reply to Bob''s message goes to Bob, even though Alice wrote more recently');
select tests.route('p2_8', tests.text_message('wamid.RI_P2_8', '447400200002', 'Which of you is this?'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'rule', tests.system_replies('447400200002', 'picker')
     from tests.routed_message('p2_8') m $$,
  $$ values ('ambiguous', null::uuid, 'several_landlords', 1) $$,
  'two landlords the tenant wrote to: ambiguous again, still one picker a day');
reset role;
select tests.link('ri_bob', '447400200002');   -- the tenant confirms Bob (a tap; see 40-)
select tests.authenticate_as_service_role();
select tests.route('p2_9', tests.text_message('wamid.RI_P2_9', '447400200002', 'Only Bob is confirmed'));
select results_eq($$ select m.landlord_id, tests.routing_metadata(m.id) ->> 'rule' from tests.routed_message('p2_9') m $$,
  $$ values (tests.get_supabase_uid('ri_bob'), 'only_confirmed_candidate') $$,
  'the one landlord the tenant confirmed receives plain messages');
reset role;
select tests.outbound('ri_alice', '447400200001', 'wamid.RI_OUT_A1', 60);
select tests.authenticate_as_service_role();
select tests.route('p2_10', tests.text_message('wamid.RI_P2_10', '447400200002', 'Quoting a message to someone else', 0, 'wamid.RI_OUT_A1'));
select results_eq($$ select m.landlord_id, tests.routing_metadata(m.id) ->> 'rule' from tests.routed_message('p2_10') m $$,
  $$ values (tests.get_supabase_uid('ri_bob'), 'only_confirmed_candidate') $$,
  'a context.id of a message sent to another phone is not a reply context');
select tests.route('p2_dup', tests.text_message('wamid.RI_P2_1', '447400200002', 'Hi, who gets this?', 500));
select results_eq($$ select r ->> 'routing_status', (r ->> 'duplicate')::boolean, r ->> 'message_id' from tests.r('p2_dup') r $$,
  $$ select 'ambiguous', true, tests.r('p2_1') ->> 'message_id' $$,
  'a redelivered ambiguous message stays what it was, though the rules would now pick Bob');

-- Who can see what.
reset role;
select tests.authenticate_as('ri_alice');
select is_empty($$ select m.id from public.whatsapp_messages m where m.wamid in ('wamid.RI_P2_1', 'wamid.RI_P2_2', 'wamid.RI_P2_8', 'wamid.RI_P2_7') $$,
  'Alice sees neither the ambiguous messages nor the one routed to Bob');
select results_eq($$ select c.landlord_id, c.unread_count from public.whatsapp_conversations c where c.tenant_phone = '447400200002' $$,
  $$ values (tests.get_supabase_uid('ri_alice'), 1) $$,
  'Alice sees her own conversation with the shared phone, counting only the messages routed to her');
select tests.authenticate_as('ri_dora');
select is_empty($$ select m.id from public.whatsapp_messages m where m.wamid = 'wamid.RI_P3_1' $$,
  'a landlord not opted in cannot read the held message');
reset role;

-- A hostile landlord who adds another landlord's tenant's phone ---------------------------------
select tests.authenticate_as_service_role();
select tests.route('p6_1', tests.text_message('wamid.RI_P6_1', '447400200006', 'Bob, the tap is leaking'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, (select array_agg(e ->> 'landlord_name' order by e ->> 'landlord_name')
                                               from jsonb_array_elements(tests.routing_metadata(m.id) -> 'candidates') e)
     from tests.routed_message('p6_1') m $$,
  $$ values ('ambiguous', null::uuid, array['Bob RI', 'Hank RI']) $$,
  'once Hank adds Bob''s tenant''s phone, messages are held as ambiguous, never delivered to Hank');
reset role;
select tests.outbound('ri_hank', '447400200006', 'wamid.RI_OUT_H6', 600);
select tests.authenticate_as_service_role();
select tests.route('p6_2', tests.text_message('wamid.RI_P6_2', '447400200006', 'Still leaking'));
select results_eq($$ select m.routing_status, m.landlord_id from tests.routed_message('p6_2') m $$,
  $$ values ('ambiguous', null::uuid) $$,
  'Hank writing to the phone first does not capture the tenant''s next message');
reset role;
select tests.outbound('ri_bob', '447400200006', 'wamid.RI_OUT_B6', 300);
select tests.authenticate_as_service_role();
select tests.route('p6_3', tests.text_message('wamid.RI_P6_3', '447400200006', 'Thanks Bob', 0, 'wamid.RI_OUT_B6'));
select tests.route('p6_4', tests.text_message('wamid.RI_P6_4', '447400200006', 'Plumber came'));
select results_eq(
  $$ select k, (tests.routed_message(k)).landlord_id, tests.routing_metadata((tests.routed_message(k)).id) ->> 'rule' from unnest(array['p6_3', 'p6_4']) k $$,
  $$ values ('p6_3', tests.get_supabase_uid('ri_bob'), 'reply_context'),
            ('p6_4', null::uuid, 'several_landlords') $$,
  'the tenant replying to Bob reaches Bob; the next plain message is for the tenant to place (picker)');
reset role;
select tests.authenticate_as('ri_hank');
select is_empty($$ select m.id from public.whatsapp_messages m where m.tenant_phone = '447400200006' and m.direction = 'incoming' $$,
  'Hank reads none of the tenant''s messages');
select results_eq($$ select c.unread_count, c.last_inbound_at from public.whatsapp_conversations c where c.tenant_phone = '447400200006' $$,
  $$ values (0, null::timestamptz) $$,
  'Hank''s conversation with the phone never receives an inbound message');
reset role;

-- STOP / START ----------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select tests.route('p7_stop', tests.text_message('wamid.RI_P7_1', '447400200007', 'stop'));
select results_eq(
  $$ select m.routing_status, m.landlord_id, tests.routing_metadata(m.id) ->> 'consent', tests.system_replies('447400200007', 'opt_out_ack')
     from tests.routed_message('p7_stop') m $$,
  $$ values ('delivered', tests.get_supabase_uid('ri_alice'), 'opted_out', 1) $$,
  'STOP (any case) records an opt-out, queues one acknowledgement, and the message is still filed');
reset role;
select results_eq($$ select p.opted_out, p.opted_out_at is not null, private.is_opted_out('447400200007') from private.phone_preferences p where p.phone = '447400200007' $$,
  $$ values (true, true, true) $$, 'the opt-out is recorded for the phone');
select is((select m.body from public.whatsapp_messages m where m.tenant_phone = '447400200007' and tests.routing_metadata(m.id) ->> 'reason' = 'opt_out_ack'),
  (select s.opt_out_ack_text from private.whatsapp_settings s), 'the acknowledgement carries the configured text');
select tests.authenticate_as_service_role();
select tests.route('p7_stop2', tests.text_message('wamid.RI_P7_2', '447400200007', '  STOP '));
select tests.route('p7_unsub', tests.text_message('wamid.RI_P7_3', '447400200007', 'UnSubscribe'));
select results_eq(
  $$ select tests.routing_metadata((tests.routed_message('p7_unsub')).id) ->> 'consent', tests.system_replies('447400200007', 'opt_out_ack') $$,
  $$ values ('opted_out', 1) $$, 'a repeated STOP or UNSUBSCRIBE is recorded but not acknowledged again');
select tests.route('p7_other', tests.text_message('wamid.RI_P7_4', '447400200007', 'please stop the noise'));
select is(tests.routing_metadata((tests.routed_message('p7_other')).id) ->> 'consent', null, 'a text merely containing stop is no keyword');
reset role;
select ok(private.is_opted_out('447400200007'), 'the phone is still opted out');
select tests.authenticate_as_service_role();
select tests.route('p7_start', tests.text_message('wamid.RI_P7_5', '447400200007', 'Start'));
select tests.route('p7_start2', tests.text_message('wamid.RI_P7_6', '447400200007', 'START'));
select results_eq(
  $$ select tests.routing_metadata((tests.routed_message('p7_start')).id) ->> 'consent', tests.system_replies('447400200007', 'opt_in_ack') $$,
  $$ values ('opted_in', 1) $$, 'START opts back in, acknowledged once (a second START is not acknowledged)');
reset role;
select results_eq($$ select p.opted_out, p.opted_in_at is not null, private.is_opted_out('447400200007') from private.phone_preferences p where p.phone = '447400200007' $$,
  $$ values (false, true, false) $$, 'the opt-in is recorded');
select tests.authenticate_as_service_role();
select tests.route('p7_stop_dup', tests.text_message('wamid.RI_P7_1', '447400200007', 'stop'));
reset role;
select results_eq(
  $$ select (tests.r('p7_stop_dup') ->> 'duplicate')::boolean, private.is_opted_out('447400200007'),
            tests.system_replies('447400200007', 'opt_out_ack') $$,
  $$ values (true, false, 1) $$, 'a redelivered old STOP does not opt the phone out again');
select tests.authenticate_as_service_role();
select tests.route('p7_stop3', tests.text_message('wamid.RI_P7_7', '447400200007', 'STOP'));
select is(tests.system_replies('447400200007', 'opt_out_ack'), 2, 'a STOP after START is a new change and is acknowledged');
select tests.route('p8_start', tests.text_message('wamid.RI_P8_S', '447400200008', 'start'));
select is(tests.system_replies('447400200008', 'opt_in_ack'), 0, 'START from a phone that never opted out is not acknowledged');
-- An unknown sender who opts out gets the acknowledgement but no courtesy reply, then or later.
select tests.route('p9_stop', tests.text_message('wamid.RI_P9_1', '447400200009', 'STOP'));
select tests.route('p9_hello', tests.text_message('wamid.RI_P9_2', '447400200009', 'hello'));
select results_eq(
  $$ select (tests.routed_message('p9_hello')).routing_status, tests.system_replies('447400200009', 'opt_out_ack'),
            tests.system_replies('447400200009', 'courtesy') $$,
  $$ values ('unknown_sender', 1, 0) $$, 'an opted-out unknown sender gets no courtesy reply');
reset role;

-- Every message type Meta sends ------------------------------------------------------------------
create table tests.samples (n int primary key, key text not null unique, message jsonb not null);
grant select on tests.samples to service_role;
insert into tests.samples (n, key, message)
select n, k, jsonb_build_object('from', '447400200008', 'id', 'wamid.RI_TYPE_' || k, 'timestamp', tests.unix_ts(1000 - n)) || m
from (values
  (1, 'text', '{"type": "text", "text": {"body": "Rent paid", "preview_url": false}}'::jsonb),
  (2, 'image', '{"type": "image", "image": {"caption": "The leak", "mime_type": "image/jpeg", "sha256": "aW1hZ2U=", "id": "1001"}}'),
  (3, 'audio', '{"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "YXVkaW8=", "id": "1002", "voice": true}}'),
  (4, 'video', '{"type": "video", "video": {"caption": "Walkthrough", "mime_type": "video/mp4", "sha256": "dmlkZW8=", "id": "1003"}}'),
  (5, 'document', '{"type": "document", "document": {"caption": "Signed", "filename": "lease.pdf", "mime_type": "application/pdf", "sha256": "ZG9j", "id": "1004"}}'),
  (6, 'sticker', '{"type": "sticker", "sticker": {"mime_type": "image/webp", "sha256": "c3RpY2tlcg==", "id": "1005", "animated": false}}'),
  (7, 'location', '{"type": "location", "location": {"latitude": 51.5072, "longitude": -0.1276, "name": "The flat", "address": "1 Alice Row"}}'),
  (8, 'location_pin', '{"type": "location", "location": {"latitude": 51.5072, "longitude": -0.1276}}'),
  (9, 'contacts', '{"type": "contacts", "contacts": [{"name": {"formatted_name": "Joe Plumber", "first_name": "Joe"}, "phones": [{"phone": "+44 7400 999999", "wa_id": "447400999999", "type": "CELL"}]}]}'),
  (10, 'button_reply', '{"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}}'),
  (11, 'list_reply', '{"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "mon", "title": "Monday", "description": "9-12"}}}'),
  (12, 'button', '{"type": "button", "button": {"payload": "CONFIRM_VISIT", "text": "Confirm"}, "context": {"from": "15550001111", "id": "wamid.RI_TEMPLATE"}}'),
  (13, 'reaction', '{"type": "reaction", "reaction": {"message_id": "wamid.RI_TYPE_text", "emoji": "❤️"}}'),
  (14, 'order', '{"type": "order", "order": {"catalog_id": "cat1", "text": "Two keys please", "product_items": [{"product_retailer_id": "key", "quantity": "2", "item_price": "5", "currency": "GBP"}]}}'),
  (15, 'order_items', '{"type": "order", "order": {"catalog_id": "cat1", "product_items": [{"product_retailer_id": "a", "quantity": "1"}, {"product_retailer_id": "b", "quantity": "1"}]}}'),
  (16, 'system', '{"type": "system", "system": {"body": "Ty changed their phone number", "new_wa_id": "447400200088", "type": "user_changed_number"}}'),
  (17, 'unsupported', '{"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}]}'),
  (18, 'unknown', '{"type": "unknown", "errors": [{"code": 131051, "title": "Message type unknown"}]}'),
  (19, 'hologram', '{"type": "hologram", "hologram": {"depth": 3}}')
) as v (n, k, m);

select tests.authenticate_as_service_role();
-- in order: the reaction's target must exist first
select count(tests.route('type_' || s.key, s.message)) from (select * from tests.samples order by n) s;
reset role;

select results_eq(
  $$ select s.key, m.type, m.body, m.media_id, m.media_mime_type, m.media_sha256, m.media_caption, m.media_filename,
            m.reply_to_wamid, m.routing_status, tests.raw(m.id) = s.message
     from tests.samples s join public.whatsapp_messages m on m.wamid = s.message ->> 'id' order by s.key $$,
  $$ values
     ('audio', 'audio', null, '1002', 'audio/ogg; codecs=opus', 'YXVkaW8=', null, null, null, 'delivered', true),
     ('button', 'button', 'Confirm', null, null, null, null, null, 'wamid.RI_TEMPLATE', 'delivered', true),
     ('button_reply', 'interactive', 'Yes please', null, null, null, null, null, null, 'delivered', true),
     ('contacts', 'contacts', 'Joe Plumber', null, null, null, null, null, null, 'delivered', true),
     ('document', 'document', null, '1004', 'application/pdf', 'ZG9j', 'Signed', 'lease.pdf', null, 'delivered', true),
     ('hologram', 'unsupported', null, null, null, null, null, null, null, 'delivered', true),
     ('image', 'image', null, '1001', 'image/jpeg', 'aW1hZ2U=', 'The leak', null, null, 'delivered', true),
     ('list_reply', 'interactive', 'Monday', null, null, null, null, null, null, 'delivered', true),
     ('location', 'location', 'The flat, 1 Alice Row', null, null, null, null, null, null, 'delivered', true),
     ('location_pin', 'location', '51.5072, -0.1276', null, null, null, null, null, null, 'delivered', true),
     ('order', 'order', 'Two keys please', null, null, null, null, null, null, 'delivered', true),
     ('order_items', 'order', 'order of 2 item(s)', null, null, null, null, null, null, 'delivered', true),
     ('reaction', 'reaction', '❤️', null, null, null, null, null, 'wamid.RI_TYPE_text', 'delivered', true),
     ('sticker', 'sticker', null, '1005', 'image/webp', 'c3RpY2tlcg==', null, null, null, 'delivered', true),
     ('system', 'system', 'Ty changed their phone number', null, null, null, null, null, null, 'delivered', true),
     ('text', 'text', 'Rent paid', null, null, null, null, null, null, 'delivered', true),
     ('unknown', 'unsupported', null, null, null, null, null, null, null, 'delivered', true),
     ('unsupported', 'unsupported', null, null, null, null, null, null, null, 'delivered', true),
     ('video', 'video', null, '1003', 'video/mp4', 'dmlkZW8=', 'Walkthrough', null, null, 'delivered', true)
  $$,
  'every message type is stored with its fields, and raw keeps the element exactly as Meta sent it');
select results_eq(
  $$ select s.key, tests.routing_metadata(m.id) ->> 'original_type' from tests.samples s
     join public.whatsapp_messages m on m.wamid = s.message ->> 'id' where m.type = 'unsupported' order by s.key $$,
  $$ values ('hologram', 'hologram'), ('unknown', 'unknown'), ('unsupported', null) $$,
  'a type Meta adds later is stored as unsupported, its real type recorded');
select is((select m.reply_to_message_id from public.whatsapp_messages m where m.wamid = 'wamid.RI_TYPE_reaction'),
  (select m.id from public.whatsapp_messages m where m.wamid = 'wamid.RI_TYPE_text'),
  'the reaction points at the message it reacts to');
select results_eq(
  $$ select c.unread_count, c.last_message_preview from tests.conversation('ri_alice', '447400200008') c $$,
  $$ values (19, 'start'::text) $$,
  'every message but the reaction counts unread (18 samples + the START text)');

-- Malformed input: 22023, nothing written ------------------------------------------------------
select set_config('tests.counts_before', (select format('%s/%s/%s', (select count(*) from public.whatsapp_messages),
  (select count(*) from public.whatsapp_conversations), (select count(*) from private.phone_preferences)))::text, true);
select tests.authenticate_as_service_role();
select is(tests.refusal_of($$ select public.route_inbound_message(null) $$), '22023 invalid_value', 'null is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('"hello"') $$), '22023 invalid_value', 'a JSON string is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('[{"id": "wamid.RI_BAD_ARR"}]') $$), '22023 invalid_value',
  'an array (the whole messages[] instead of one element) is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"from": "447400200005", "type": "text", "text": {"body": "STOP"}}') $$), '22023 invalid_value', 'a message without id is refused (even a STOP)');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "  ", "from": "447400200005", "type": "text", "text": {"body": "x"}}') $$), '22023 invalid_value', 'a blank id is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_1", "type": "text", "text": {"body": "STOP"}}') $$), '22023 invalid_value', 'a message without from is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_2", "from": "+447400200005", "type": "text", "text": {"body": "x"}}') $$), '22023 invalid_value', 'a from with other than digits is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_3", "from": "0000000", "type": "text", "text": {"body": "x"}}') $$), '22023 invalid_value', 'a from that is not a phone number is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_4", "from": "447400200005", "text": {"body": "x"}}') $$), '22023 invalid_value', 'a message without type is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_5", "from": "447400200005", "type": "text", "text": {}}') $$), '22023 invalid_value', 'a text without body is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_6", "from": "447400200005", "type": "text", "text": "STOP"}') $$), '22023 invalid_value', 'a text whose text is not an object is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_7", "from": "447400200005", "type": "image", "image": {"mime_type": "image/jpeg"}}') $$), '22023 invalid_value', 'an image without id is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_8", "from": "447400200005", "type": "document"}') $$), '22023 invalid_value', 'a document without its object is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_9", "from": "447400200005", "timestamp": "yesterday", "type": "text", "text": {"body": "x"}}') $$), '22023 invalid_value', 'a timestamp that is not Unix seconds is refused');
select is(tests.refusal_of($$ select public.route_inbound_message('{"id": "wamid.RI_BAD_10", "from": "447400200005", "timestamp": "-1", "type": "text", "text": {"body": "x"}}') $$), '22023 invalid_value', 'a negative timestamp is refused');
reset role;
select is((select format('%s/%s/%s', (select count(*) from public.whatsapp_messages),
  (select count(*) from public.whatsapp_conversations), (select count(*) from private.phone_preferences))),
  current_setting('tests.counts_before'), 'refused input wrote no message, conversation or phone preference');
select is_empty($$ select 1 from public.whatsapp_messages m where m.wamid like 'wamid.RI_BAD%' $$, 'no malformed message was stored');

select * from finish();
rollback;
