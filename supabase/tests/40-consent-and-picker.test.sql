-- Tenants decide who reaches them (issue 14): links per (landlord, phone), consent requests,
-- business-initiated messages only to confirmed links, routing among several candidates by the
-- tenant's own facts, the picker, the template registry and the daily cap. The three stories a
-- hostile landlord tried on the old rules (capture, disruption, spam) are replayed and fail.
-- Phones 4474006000xx are used only here.
begin;
select plan(99);

-- Setup (postgres) ----------------------------------------------------------------------------
select tests.add_landlord('cp_rita', 'Rita Real');
select tests.add_landlord('cp_hugo', 'Hugo Hostile');
select tests.add_landlord('cp_otto', 'Otto Other');
select tests.add_landlord('cp_dora', 'Dora Dormant', false);
select tests.create_supabase_user('cp_sup', 'sam@support.zenrent.test', '{"role": "support"}');

-- Rita's tenant Tom (phone 01) has written to her before (only candidate): confirmed.
select tests.add_tenancy('cp_rita', 'Tom Tenant', '07400 600001', '12 Rosemary Lane, Flat 1');
select tests.add_tenancy('cp_otto', 'Pat Shared', '07400 600002', '3 Canal Street');   -- phone 02: Otto and Rita
select tests.add_tenancy('cp_rita', 'Pat Shared', '+44 7400 600002', '12 Rosemary Lane, Flat 2');

-- -- Links: a tenant writing while a landlord is the only candidate confirms that link ----------
select is(tests.link_state('cp_rita', '447400600001'), 'unconfirmed', 'no row: the link is unconfirmed');
select is(tests.route_text('wamid.CP_01_1', '447400600001', 'Hi Rita, the boiler again', 3600) ->> 'routing_status', 'delivered',
  'Tom writes while Rita is his only candidate: delivered');
select results_eq($$ select state, state_via from public.whatsapp_tenant_links
                    where landlord_id = tests.get_supabase_uid('cp_rita') and tenant_phone = '447400600001' $$,
  $$ values ('confirmed', 'only_candidate') $$, 'and the link is confirmed (only_candidate)');
select is(tests.link('cp_otto', '447400600099', 'declined'), 'unconfirmed', 'a tenant may decline a landlord');
select is((select private.set_link_state(tests.get_supabase_uid('cp_otto'), '447400600099', 'confirmed', 'only_candidate')),
  'declined', 'what ZenRent infers never overrides a decline ...');
select is(tests.link_state('cp_otto', '447400600099'), 'declined', '... the link stays declined');
select is(tests.refusal_of($$ select private.set_link_state(gen_random_uuid(), '447400600099', 'confirmed', 'report') $$),
  '22023 invalid_value', 'a link cannot be confirmed by a report');

-- -- Story 1: capture. Hugo copies Rita's name, adds Tom's phone, opens a conversation and sends
--    a template; Tom answers. Nothing of Tom's reaches Hugo. -----------------------------------
update public.user_profiles set full_name = 'Rita Real' where id = tests.get_supabase_uid('cp_hugo');
select tests.add_tenancy('cp_hugo', 'Tom Tenant', '07400 600001', '12 Rosemary Lane, Flat 1');
select tests.authenticate_as('cp_hugo');
select isnt(public.start_whatsapp_conversation((select id from public.tenants where user_id = auth.uid() and phone_e164 = '447400600001')),
  null, 'Hugo can open a conversation with Tom''s phone ...');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L, %L)',
  tests.conversation_id('cp_hugo', '447400600001'), 'rent_reminder', 'en_GB', '["May"]')), '55000 consent_pending',
  '... but his template is refused: Tom has not confirmed him');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('cp_hugo', '447400600001'), 'Pay me')),
  '55000 window_closed', 'and free text is refused: Tom never wrote to him');
reset role;
select results_eq($$ select count(*)::int from public.whatsapp_messages where landlord_id = tests.get_supabase_uid('cp_hugo')
                    and routing_status = 'outbound' $$, $$ values (0) $$, 'no message of Hugo''s is queued');
select is((tests.zenrent_message('447400600001', 'consent_request')).landlord_id, tests.get_supabase_uid('cp_hugo'),
  'instead ZenRent asks Tom whether Hugo is his landlord (filed in Hugo''s conversation)');
select ok((tests.zenrent_message('447400600001', 'consent_request')).interactive ->> 'type' = 'button',
  'Tom wrote within 24 hours: the request is interactive reply buttons');
select is(tests.route_text('wamid.CP_01_2', '447400600001', 'Rita, when is the engineer coming?') ->> 'landlord_id',
  tests.get_supabase_uid('cp_rita')::text, 'Tom''s plain message goes to Rita, his confirmed landlord');
update public.whatsapp_messages set wamid = 'wamid.CP_REQ_HUGO', status = 'sent'
where id = (tests.zenrent_message('447400600001', 'consent_request')).id;
select is(tests.route_text('wamid.CP_01_3', '447400600001', 'Who are you?', 0, 'wamid.CP_REQ_HUGO') ->> 'landlord_id',
  tests.get_supabase_uid('cp_rita')::text, 'even a reply to the request about Hugo does not reach Hugo');
select tests.outbound('cp_hugo', '447400600001', 'wamid.CP_HUGO_OUT', 60);
select is(tests.route_text('wamid.CP_01_4', '447400600001', 'ok', 0, 'wamid.CP_HUGO_OUT') ->> 'landlord_id',
  tests.get_supabase_uid('cp_rita')::text,
  'a reply to a message of Hugo''s goes to Rita: an unconfirmed candidate never receives while a confirmed one exists');
select tests.authenticate_as('cp_hugo');
select is_empty($$ select 1 from public.whatsapp_messages where direction = 'incoming' $$, 'Hugo has received nothing from Tom');
reset role;

-- Tom taps "Not my landlord" on the request about Hugo.
select is(tests.tap('wamid.CP_01_NO', '447400600001', (tests.option_tokens(tests.zenrent_message('447400600001', 'consent_request')))[2])
  ->> 'routing_status', 'system', 'Tom''s tap is an answer to ZenRent, filed with no landlord');
select results_eq($$ select state, state_via from public.whatsapp_tenant_links
                    where landlord_id = tests.get_supabase_uid('cp_hugo') and tenant_phone = '447400600001' $$,
  $$ values ('declined', 'consent_no') $$, 'the link is declined');
select isnt(tests.zenrent_message('447400600001', 'consent_no_ack'), null, 'and ZenRent acknowledges it');
select tests.authenticate_as('cp_hugo');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L, %L)',
  tests.conversation_id('cp_hugo', '447400600001'), 'rent_reminder', 'en_GB', '["May"]')), '55000 consent_declined',
  'Hugo can no longer send Tom a template');
select is(tests.refusal_of(format('select public.start_whatsapp_conversation(%L)',
  (select id from public.tenants where user_id = auth.uid() and phone_e164 = '447400600001'))), '55000 consent_declined',
  'nor ask again');
select results_eq($$ select state from public.whatsapp_tenant_links $$, $$ values ('declined') $$,
  'Hugo reads his own link with Tom''s phone, and only his');
select throws_ok($$ update public.whatsapp_tenant_links set state = 'confirmed' $$, '42501', null, 'Hugo cannot change a link');
select throws_ok(format('insert into public.whatsapp_tenant_links (landlord_id, tenant_phone, state) values (%L, %L, %L)',
  auth.uid(), '447400600002', 'confirmed'), '42501', null, 'nor create one');
select throws_ok($$ select * from private.tenant_choices $$, '42501', null, 'nor read the option tokens');
reset role;
select tests.clear_authentication();
select throws_ok($$ select * from public.whatsapp_tenant_links $$, '42501', null, 'anon reads no links');
reset role;

-- -- Story 2: disruption. A landlord adding a confirmed tenant's phone does not hide the tenant's
--    messages from their landlord (it used to make them ambiguous). --------------------------
select tests.add_tenancy('cp_otto', 'Tom Tenant', '07400 600001', '9 Elsewhere Road');
select results_eq($$ select r ->> 'routing_status', r ->> 'landlord_id' from tests.route_text('wamid.CP_01_5', '447400600001', 'Hello?') r $$,
  format($f$ values ('delivered', %L) $f$, tests.get_supabase_uid('cp_rita')),
  'with three landlords on Tom''s phone, his message still goes straight to Rita');
select is(tests.routing_metadata(tests.message_id('wamid.CP_01_5')) ->> 'rule', 'only_confirmed_candidate',
  'because she is the one candidate Tom confirmed');

-- -- Story 3: spam. Hugo types 21 phones in and asks them all. ---------------------------------
select tests.add_tenancy('cp_hugo', 'Stranger ' || i, '07400 6001' || lpad(i::text, 2, '0'), 'Spam Street ' || i)
from generate_series(1, 21) i;
select tests.authenticate_as('cp_hugo');
create temp table started (i int, result text) on commit drop;
grant all on started to authenticated;
insert into started
select i, tests.refusal_of(format('select public.start_whatsapp_conversation(%L)',
  (select id from public.tenants where user_id = auth.uid() and phone_e164 = '4474006001' || lpad(i::text, 2, '0'))))
from generate_series(1, 21) i;
reset role;
select results_eq($$ select count(*)::int from started where result = 'no error' $$, $$ values (19) $$,
  '19 consent requests go out (with the one to Tom, 20: the daily cap) ...');
select results_eq($$ select array_agg(result order by i) from started where result <> 'no error' $$,
  $$ values (array['55000 daily_limit_reached', '55000 daily_limit_reached']) $$, '... the rest are refused');
select results_eq($$ select count(*)::int from public.whatsapp_messages where landlord_id = tests.get_supabase_uid('cp_hugo')
                    and routing_status = 'system' $$, $$ values (20) $$, 'exactly 20 business-initiated messages in Hugo''s name');
select ok((select bool_and(m.outbound_kind = 'template' and m.template ->> 'name' = 'zenrent_consent_request')
           from public.whatsapp_messages m where m.landlord_id = tests.get_supabase_uid('cp_hugo') and m.routing_status = 'system'
             and m.tenant_phone like '4474006001%'),
  'strangers who never wrote get the approved consent template');

-- Support raises an agency's limit, audited.
select tests.authenticate_as('cp_hugo');
select is(tests.refusal_of(format('select public.set_landlord_daily_limit(%L, 500, %L)', auth.uid(), 'me')), '42501 support_only',
  'a landlord cannot raise their own limit');
select tests.authenticate_as('cp_sup');
select is(tests.refusal_of(format('select public.set_landlord_daily_limit(%L, 25, %L)', tests.get_supabase_uid('cp_hugo'), ' ')),
  '22023 invalid_value', 'support must give a reason');
select lives_ok(format('select public.set_landlord_daily_limit(%L, 25, %L)', tests.get_supabase_uid('cp_hugo'), 'agency onboarding'),
  'support raises Hugo''s limit to 25');
reset role;
select results_eq($$ select action, reason, details ->> 'daily_limit' from private.support_audit_log
                    where landlord_id = tests.get_supabase_uid('cp_hugo') and action = 'set_daily_limit' $$,
  $$ values ('set_daily_limit', 'agency onboarding', '25') $$, 'the change is audited');
select tests.authenticate_as('cp_hugo');
select is(tests.refusal_of(format('select public.start_whatsapp_conversation(%L)',
  (select id from public.tenants where user_id = auth.uid() and phone_e164 = '447400600120'))), 'no error',
  'with the higher limit the next request goes out');
select is(tests.refusal_of(format('select public.start_whatsapp_conversation(%L)',
  (select id from public.tenants where user_id = auth.uid() and phone_e164 = '447400600120'))), 'no error',
  'opening the same conversation again ...');
reset role;
select results_eq($$ select count(*)::int from public.whatsapp_messages where tenant_phone = '447400600120' and routing_status = 'system' $$,
  $$ values (1) $$, '... asks that phone once: at most one request per landlord and phone per 7 days');

-- -- Consent answers: yes by a template quick reply; report; foreign and expired options ------
select is(tests.tap('wamid.CP_120_YES', '447400600120',
                    (tests.option_tokens(tests.zenrent_message('447400600120', 'consent_request')))[1], 'button') ->> 'routing_status',
  'system', 'a stranger taps Yes on the template''s quick reply');
select is(tests.link_state('cp_hugo', '447400600120'), 'confirmed', 'Hugo is confirmed for that phone');
select tests.authenticate_as('cp_hugo');
select isnt(public.send_whatsapp_template(tests.conversation_id('cp_hugo', '447400600120'), 'rent_reminder', 'en_GB', '["June", "1 July"]'),
  null, 'and his templates to it go out');
reset role;
select is(tests.tap('wamid.CP_101_X', '447400600199',
                    (tests.option_tokens(tests.zenrent_message('447400600101', 'consent_request')))[1], 'button') ->> 'routing_status',
  'system', 'another phone tapping a copy of that option ...');
select is(tests.link_state('cp_hugo', '447400600101'), 'unconfirmed', '... confirms nothing (options are bound to their phone)');
select isnt(tests.zenrent_message('447400600199', 'choice_expired'), null, 'and gets a polite re-ask');
select is(tests.tap('wamid.CP_101_R', '447400600101',
                    (tests.option_tokens(tests.zenrent_message('447400600101', 'consent_request')))[3], 'button') ->> 'routing_status',
  'system', 'the real recipient taps Report spam');
select results_eq($$ select state, state_via from public.whatsapp_tenant_links
                    where landlord_id = tests.get_supabase_uid('cp_hugo') and tenant_phone = '447400600101' $$,
  $$ values ('declined', 'report') $$, 'the link is declined as a report');
select tests.authenticate_as('cp_sup');
select results_eq($$ select tenant_phone, landlord_id, landlord_email from public.list_tenant_reports() $$,
  format($f$ values ('447400600101', %L::uuid, 'cp_hugo@test.zenrent') $f$, tests.get_supabase_uid('cp_hugo')),
  'support sees the report, with the landlord''s id and email');
select tests.authenticate_as('cp_hugo');
select is(tests.refusal_of('select * from public.list_tenant_reports()'), '42501 support_only', 'landlords do not');
reset role;
update private.tenant_choices set expires_at = now() - interval '1 second'
where token = (tests.option_tokens(tests.zenrent_message('447400600102', 'consent_request')))[1];
select is(tests.tap('wamid.CP_102_OLD', '447400600102',
                    (tests.option_tokens(tests.zenrent_message('447400600102', 'consent_request')))[1], 'button') ->> 'routing_status',
  'system', 'an expired option is no error for Meta ...');
select is(tests.link_state('cp_hugo', '447400600102'), 'unconfirmed', '... confirms nothing ...');
select isnt(tests.zenrent_message('447400600102', 'choice_expired'), null, '... and is answered politely');
select is(tests.tap('wamid.CP_102_ZZ', '447400600102', 'zr' || repeat('0', 32)) ->> 'routing_status', 'system',
  'an unknown option is no error either');
select results_eq($$ select count(*)::int from private.support_audit_log where phone = '447400600101' and action = 'consent_report' $$,
  $$ values (1) $$, 'each answer is audited');

-- -- Templates are ZenRent's: registered, with their parameter count ------------------------------
select tests.link('cp_rita', '447400600001');
select tests.authenticate_as('cp_rita');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L)', tests.conversation_id('cp_rita', '447400600001'),
  'free_form_blast', 'en')), '22023 template_not_registered', 'an unregistered template is refused');
select is(tests.refusal_of(format('select public.send_whatsapp_template(%L, %L, %L, %L)', tests.conversation_id('cp_rita', '447400600001'),
  'rent_reminder', 'en_GB', '["May"]')), '22023 template_not_registered', 'so is a wrong number of parameters');
select is(tests.refusal_of($$ select public.approve_whatsapp_template('free_form_blast', 'en', 'marketing', 0) $$),
  '42501 support_only', 'landlords cannot register templates');
select tests.authenticate_as('cp_sup');
select is((public.approve_whatsapp_template('move_out_checklist', 'en_GB', 'utility', 2)) ->> 'category', 'utility',
  'support registers a template');
select is(tests.refusal_of($$ select public.approve_whatsapp_template('Bad Name', 'en', 'utility', 1) $$), '22023 invalid_value',
  'only names as WhatsApp Manager has them');
select tests.authenticate_as('cp_rita');
select isnt(public.send_whatsapp_template(tests.conversation_id('cp_rita', '447400600001'), 'move_out_checklist', 'en_GB', '["Flat 1"]'),
  null, 'a confirmed landlord sends a registered template');
reset role;
select results_eq($$ select count(*)::int from private.support_audit_log where action = 'approve_template'
                    and details ->> 'name' = 'move_out_checklist' $$, $$ values (1) $$, 'registrations are audited');

-- -- The picker: two unconfirmed landlords share phone 02 ----------------------------------------
select is(tests.route_text('wamid.CP_02_1', '447400600002', 'Is the parking bay mine?', 120) ->> 'routing_status', 'ambiguous',
  'several unconfirmed candidates: held as ambiguous');
select ok((tests.zenrent_message('447400600002', 'picker')).interactive ->> 'type' = 'button'
          and jsonb_array_length((tests.zenrent_message('447400600002', 'picker')).interactive -> 'action' -> 'buttons') = 2,
  'the tenant gets a picker with one reply button per candidate');
select is((tests.zenrent_message('447400600002', 'picker')).reply_to_wamid, 'wamid.CP_02_1', 'in reply to the held message');
select ok((select bool_and(t ~ '^zr[0-9a-f]{32}$') and not bool_or(t like '%' || tests.get_supabase_uid('cp_otto')::text || '%')
           from unnest(tests.option_tokens(tests.zenrent_message('447400600002', 'picker'))) t),
  'option ids are opaque tokens, never landlord ids');
select ok((tests.zenrent_message('447400600002', 'picker')).interactive -> 'body' ->> 'text' like '%3 Canal Street%'
          and (tests.zenrent_message('447400600002', 'picker')).interactive -> 'body' ->> 'text' like '%12 Rosemary Lane, Flat 2%',
  'the body shows each landlord with the property address');
select is(tests.route_text('wamid.CP_02_2', '447400600002', 'Hello??', 60) ->> 'routing_status', 'ambiguous', 'a second message is held too');
select results_eq($$ select count(*)::int from public.whatsapp_messages where tenant_phone = '447400600002'
                    and tests.routing_metadata(id) ->> 'reason' = 'picker' $$, $$ values (1) $$, 'at most one picker per phone per day');
-- Pat picks Otto (options are sorted by landlord name: Otto Other, Rita Real).
select is(tests.tap('wamid.CP_02_PICK', '447400600002', (tests.option_tokens(tests.zenrent_message('447400600002', 'picker')))[1])
  ->> 'routing_status', 'system', 'Pat picks Otto');
select results_eq($$ select wamid, landlord_id, routing_status from public.whatsapp_messages
                    where wamid in ('wamid.CP_02_1', 'wamid.CP_02_2') order by sent_at $$,
  format($f$ values ('wamid.CP_02_1', %1$L::uuid, 'delivered'), ('wamid.CP_02_2', %1$L::uuid, 'delivered') $f$, tests.get_supabase_uid('cp_otto')),
  'both held messages go to Otto, in order');
select results_eq($$ select unread_count, last_message_preview from public.whatsapp_conversations
                    where landlord_id = tests.get_supabase_uid('cp_otto') and tenant_phone = '447400600002' $$,
  $$ values (2, 'Hello??') $$, 'as unread messages of Otto''s conversation');
select is(tests.link_state('cp_otto', '447400600002'), 'confirmed', 'the pick confirms Otto');
select results_eq($$ select source, landlord_id from private.routing_pins where phone = '447400600002' $$,
  format($f$ values ('tenant', %L::uuid) $f$, tests.get_supabase_uid('cp_otto')), 'and pins the phone to him (a tenant pin)');
select isnt(tests.zenrent_message('447400600002', 'picker_ack'), null, 'the pick is acknowledged');
select results_eq($$ select actor_kind, action, (details ->> 'messages_filed')::int from private.support_audit_log
                    where phone = '447400600002' and action = 'pick' $$, $$ values ('tenant', 'pick', 2) $$, 'and audited');
select tests.authenticate_as('cp_rita');
select is_empty($$ select 1 from public.whatsapp_messages where tenant_phone = '447400600002' and direction = 'incoming' $$,
  'Rita sees none of it');
reset role;
select is(tests.route_text('wamid.CP_02_3', '447400600002', 'Thanks Otto') ->> 'landlord_id', tests.get_supabase_uid('cp_otto')::text,
  'Pat''s next message goes to Otto');
select is(tests.tap('wamid.CP_02_PICK2', '447400600002', (tests.option_tokens(tests.zenrent_message('447400600002', 'picker')))[1])
  ->> 'routing_status', 'system', 'tapping the same option again ...');
select results_eq($$ select count(*)::int from private.support_audit_log where phone = '447400600002' and action = 'pick' $$,
  $$ values (1) $$, '... changes nothing');

-- -- The picker's shape within Meta's limits --------------------------------------------------------
select ok(char_length(x.interactive -> 'body' ->> 'text') <= 1024
          and (select bool_and(char_length(b -> 'reply' ->> 'title') <= 20) from jsonb_array_elements(x.interactive -> 'action' -> 'buttons') b),
  'three options with long names: buttons, titles within 20 characters, body within 1,024')
from (select private.picker_interactive('447400600003', (select jsonb_agg(jsonb_build_object(
        'landlord_id', tests.get_supabase_uid('cp_otto'), 'landlord_name', repeat('Bartholomew-Featherstonehaugh ', 3),
        'property_address', repeat('Flat 12, The Very Long Building Name, ', 20))) from generate_series(1, 3))) as interactive) x;
select ok(x.interactive ->> 'type' = 'list'
          and jsonb_array_length(x.interactive -> 'action' -> 'sections' -> 0 -> 'rows') = 7
          and char_length(x.interactive -> 'body' ->> 'text') <= 1024
          and (select bool_and(char_length(r ->> 'title') <= 24 and char_length(r ->> 'description') <= 72)
               from jsonb_array_elements(x.interactive -> 'action' -> 'sections' -> 0 -> 'rows') r),
  'seven options: a list, row titles within 24 and descriptions within 72 characters')
from (select private.picker_interactive('447400600003', (select jsonb_agg(jsonb_build_object(
        'landlord_id', tests.get_supabase_uid('cp_otto'), 'landlord_name', 'Landlord with a rather long name ' || i,
        'property_address', repeat('Apartment ' || i || ', ', 30))) from generate_series(1, 7) i)) as interactive) x;
select results_eq($$ select jsonb_array_length(x.interactive -> 'action' -> 'sections' -> 0 -> 'rows'),
                            x.interactive -> 'action' -> 'sections' -> 0 -> 'rows' -> 9 ->> 'title',
                            char_length(x.interactive -> 'body' ->> 'text') <= 1024,
                            x.interactive -> 'body' ->> 'text' like '%9. %' and x.interactive -> 'body' ->> 'text' not like '%10. %'
                     from (select private.picker_interactive('447400600003', (select jsonb_agg(jsonb_build_object(
                             'landlord_id', tests.get_supabase_uid('cp_otto'), 'landlord_name', 'Agency ' || i,
                             'property_address', i || ' Harbour View')) from generate_series(1, 12) i)) as interactive) x $$,
  $$ values (10, 'Someone else', true, true) $$, 'twelve options: nine rows and "Someone else", within 10 rows');
select is(private.fit_text(e'Rita\n Real\t via  Zen', 20), 'Rita Real via Zen', 'user text is put on one line before it is shown');
select is(private.fit_text('abcdefghijklmnopqrstuvwxyz', 10), 'abcdefghi…', 'and cut with an ellipsis to fit');

-- -- Reply context chooses only among confirmed candidates; two confirmed: picker over those two ----
select tests.add_tenancy('cp_rita', 'Quinn Q', '07400 600004', '12 Rosemary Lane, Flat 3');
select tests.add_tenancy('cp_otto', 'Quinn Q', '07400 600004', '4 Canal Street');
select tests.add_tenancy('cp_hugo', 'Quinn Q', '07400 600004', '5 Spam Street');
select tests.link('cp_rita', '447400600004');
select tests.link('cp_otto', '447400600004');
select is(tests.route_text('wamid.CP_04_1', '447400600004', 'Hello') ->> 'routing_status', 'ambiguous',
  'two confirmed candidates: ambiguous');
select is(jsonb_array_length((tests.zenrent_message('447400600004', 'picker')).interactive -> 'action' -> 'buttons'), 2,
  'the picker offers the two confirmed landlords, not the unconfirmed third');
select is(tests.tap('wamid.CP_04_PICK', '447400600004', (tests.option_tokens(tests.zenrent_message('447400600004', 'picker')))[2],
                    'list_reply') ->> 'routing_status', 'system', 'a pick arrives as a list_reply too');
select results_eq($$ select landlord_id, routing_status from public.whatsapp_messages where wamid = 'wamid.CP_04_1' $$,
  format($f$ values (%L::uuid, 'delivered') $f$, tests.get_supabase_uid('cp_rita')), 'and files the held message with Rita');
select tests.outbound('cp_otto', '447400600004', 'wamid.CP_OTTO_OUT', 600);
select is(tests.route_text('wamid.CP_04_2', '447400600004', 'Yes, Tuesday works', 0, 'wamid.CP_OTTO_OUT') ->> 'landlord_id',
  tests.get_supabase_uid('cp_otto')::text, 'a reply to Otto''s message goes to Otto');

-- -- Support tells look-alike candidates apart, and needs a reason for an unconfirmed landlord ----
select tests.add_tenancy('cp_rita', 'Vera V', '07400 600005', '12 Rosemary Lane, Flat 4');
select tests.add_tenancy('cp_hugo', 'Vera V', '07400 600005', '12 Rosemary Lane, Flat 4');
select tests.route_text('wamid.CP_05_1', '447400600005', 'Hi');
select tests.authenticate_as('cp_sup');
select results_eq($$ select c ->> 'landlord_email', c ->> 'link_state', (c ->> 'same_name_as_another_candidate')::boolean
                    from public.list_held_messages() h, jsonb_array_elements(h.candidates) c
                    where h.wamid = 'wamid.CP_05_1' order by c ->> 'landlord_email' $$,
  $$ values ('cp_hugo@test.zenrent', 'unconfirmed', true), ('cp_rita@test.zenrent', 'unconfirmed', true) $$,
  'support sees each candidate''s email and link state, and that their names are the same');
select is(tests.refusal_of(format('select public.assign_held_message(%L, %L)', tests.message_id('wamid.CP_05_1'),
  tests.get_supabase_uid('cp_rita'))), '22023 invalid_value', 'assigning to an unconfirmed landlord needs a reason');
select lives_ok(format('select public.assign_held_message(%L, %L, 0, %L)', tests.message_id('wamid.CP_05_1'),
  tests.get_supabase_uid('cp_rita'), 'tenant confirmed by phone'), 'with a reason it goes through');
reset role;
select results_eq($$ select reason, details ->> 'link_state', jsonb_array_length(details -> 'override') from private.support_audit_log
                    where message_id = tests.message_id('wamid.CP_05_1') $$,
  $$ values ('tenant confirmed by phone', 'unconfirmed', 1) $$, 'and the override is audited');
select tests.add_tenancy('cp_dora', 'Vera V', '07400 600005', '6 Dormant Row');
select tests.route_text('wamid.CP_05_2', '447400600005', 'Hi again');
select tests.authenticate_as('cp_sup');
select is(tests.refusal_of(format('select public.assign_held_message(%L, %L, 0, %L)', tests.message_id('wamid.CP_05_2'),
  tests.get_supabase_uid('cp_dora'), ' ')), '22023 invalid_value', 'assigning to a landlord who has not opted in needs a reason too');
reset role;

-- -- What the tenant will receive: claim_outbound_messages returns the exact payload ---------------
update public.whatsapp_messages set next_attempt_at = now() + interval '1 hour' where status = 'queued';
update public.whatsapp_messages set next_attempt_at = null
where id in ((tests.zenrent_message('447400600004', 'picker')).id, (tests.zenrent_message('447400600120', 'consent_request')).id);
select tests.authenticate_as('cp_rita');
select isnt(public.send_whatsapp_message(tests.conversation_id('cp_rita', '447400600001'), 'The engineer comes at 9.'), null,
  'Rita replies in the window');
select tests.authenticate_as_service_role();
create temp table claimed on commit drop as select * from public.claim_outbound_messages(10);
reset role;
select results_eq($$ select kind, payload ->> 'messaging_product', payload ->> 'recipient_type', payload ->> 'to', payload ->> 'type',
                            payload -> 'text' ->> 'body', payload ->> 'biz_opaque_callback_data' = id::text
                     from claimed where kind = 'text' $$,
  $$ values ('text', 'whatsapp', 'individual', '447400600001', 'text', e'From Rita Real via ZenRent:\nThe engineer comes at 9.', true) $$,
  'a text: the exact body, signature first');
select results_eq($$ select payload -> 'interactive' ->> 'type', payload -> 'context' ->> 'message_id' from claimed where kind = 'interactive' $$,
  $$ values ('button', 'wamid.CP_04_1') $$, 'the picker: interactive, in reply to the held message');
select results_eq($$ select payload -> 'template' ->> 'name', jsonb_array_length(payload -> 'template' -> 'components') from claimed
                     where kind = 'template' $$,
  $$ values ('zenrent_consent_request', 4) $$, 'the consent template: body parameters and three quick replies');

select * from finish();
rollback;
