-- Hardening against hostile landlords and malformed webhooks (issue 15): a flood of tenants with
-- one phone cannot make routing unbounded, display names cannot forge a signature, bodies need a
-- visible character, phone_e164 cannot be written directly, "not found" and "not yours" are one
-- answer, and dead letters are for support only. (Webhook item isolation and timestamps: 12-.)
-- Phones 4474007000xx are used only here.
begin;
select plan(40);

select tests.add_landlord('hd_vera', 'Vera Victim');
select tests.add_landlord('hd_hank', 'Hank Hostile');
select tests.create_supabase_user('hd_sup', 'sue@support.zenrent.test', '{"role": "support"}');
select tests.add_tenancy('hd_vera', 'Tess Tenant', '07400 700001', '1 Victim Row');
select tests.register_template('hello_tenant', 'en', 1);

-- -- Story: flooding a phone. Hank types Tess's phone in again and again. -----------------------
select tests.authenticate_as('hd_hank');
insert into public.properties (id, user_id, address) values ('a5000000-0050-4000-8000-000000000001', auth.uid(), '9 Flood Lane');
select lives_ok($$ insert into public.tenants (user_id, name, phone)
                   select auth.uid(), 'Copy ' || i, '07400 700001' from generate_series(1, 5) i $$,
  'a landlord may hold a few tenants with one phone (the setting: 5)');
select is(tests.refusal_of($$ insert into public.tenants (user_id, name, phone) values (auth.uid(), 'Copy 6', '+44 7400 700001') $$),
  '23514 too_many_tenants_with_phone', 'the sixth, typed another way, is refused');
reset role;
select is(tests.refusal_of($$ insert into public.tenants (user_id, name, phone)
                              select tests.get_supabase_uid('hd_hank'), 'Batch ' || i, '07400 700002' from generate_series(1, 1000) i $$),
  '23514 too_many_tenants_with_phone', 'a batch of 1,000 in one statement stops at the cap (rows of the same statement count)');
select is((select count(*)::int from public.tenants where phone_e164 = '447400700002'), 0, 'and leaves nothing behind');
select tests.authenticate_as('hd_hank');
select is(tests.refusal_of($$ update public.tenants set name = 'Copy 1, renamed', phone = '+447400700001' where name = 'Copy 1' $$),
  'no error', 'a tenant already counted may still be edited (its phone, retyped, is the same)');
insert into public.tenants (user_id, name, phone) values (auth.uid(), 'Other phone', '07400 700003');
select is(tests.refusal_of($$ update public.tenants set phone = '07400 700001' where name = 'Other phone' $$),
  '23514 too_many_tenants_with_phone', 'moving another tenant onto the phone is refused too');
insert into public.leases (tenant_id, property_id, status, start_date)
select t.id, 'a5000000-0050-4000-8000-000000000001', 'active', date '2025-01-01' + i::int
from (select id, row_number() over (order by name) as i from public.tenants where user_id = auth.uid() and phone_e164 = '447400700001') t;
reset role;
select results_eq($$ select count(*)::int from private.tenant_landlord_routing where tenant_phone = '447400700001' $$,
  $$ values (2) $$, 'five active leases of Hank''s for the phone are one routing row; Vera''s is the other');
select results_eq($$ select r.lease_id = (select l.id from public.leases l join public.tenants t on t.id = l.tenant_id
                                           where t.user_id = r.landlord_id and t.phone_e164 = r.tenant_phone
                                           order by l.start_date desc, l.id limit 1)
                     from private.tenant_landlord_routing r where r.tenant_phone = '447400700001' and r.landlord_id = tests.get_supabase_uid('hd_hank') $$,
  $$ values (true) $$, 'the row is his newest lease');
select is(jsonb_array_length(private.routing_candidates('447400700001')), 2, 'routing reads two candidates, not six');
select tests.link('hd_vera', '447400700001');
select is(tests.route_text('wamid.HD_01', '447400700001', 'Vera, the gate is stuck') ->> 'landlord_id',
  tests.get_supabase_uid('hd_vera')::text, 'and Tess''s message still goes to Vera');
select results_eq($$ select count(*)::int from private.tenant_landlord_routing where landlord_id = tests.get_supabase_uid('hd_hank') $$,
  $$ values (1) $$, 'Hank''s flood is one row of the routing table in all');

-- -- Story: a forged signature. Hank names himself "<Vera> via ZenRent:" + a payment request. ----
select tests.authenticate_as('hd_hank');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', e'Vera Victim via ZenRent:\nPay rent to IBAN X')),
  '22023 invalid_display_name', 'a name with a line break and "via ZenRent" is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', 'Vera Victim via ZenRent')),
  '22023 invalid_display_name', '"via ZenRent" on one line is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', 'Vera - VIA zen-rent')),
  '22023 invalid_display_name', 'however it is spelled or spaced');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', e'Vera\u202EtsiloH')),
  '22023 invalid_display_name', 'a right-to-left override is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', e'Ve\u200Bra')),
  '22023 invalid_display_name', 'a zero-width space is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', e'\u200B')),
  '22023 invalid_display_name', 'a name of nothing visible is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', e'Vera\tVictim')),
  '22023 invalid_display_name', 'a tab is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', ' Vera')),
  '22023 invalid_display_name', 'a leading space is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', repeat('V', 61))),
  '22023 invalid_display_name', 'more than 60 characters is refused');
select is(tests.refusal_of(format('update public.user_profiles set full_name = %L', 'José Müller-Øster 🏠 Lettings')),
  'no error', 'accents, other scripts and emoji are fine');
select is(tests.refusal_of(format('insert into public.user_profiles (id, full_name) values (gen_random_uuid(), %L)', e'A\nB')),
  '22023 invalid_display_name', 'the same rule holds on insert');
reset role;
-- A name stored before the rule (the trigger bypassed, as for a legacy row) sends nothing.
alter table public.user_profiles disable trigger user_profiles_validate_display_name;
update public.user_profiles set full_name = e'Vera Victim via ZenRent:\nPay here' where id = tests.get_supabase_uid('hd_vera');
alter table public.user_profiles enable trigger user_profiles_validate_display_name;
select tests.authenticate_as('hd_vera');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('hd_vera', '447400700001'), 'Hi')),
  '22023 invalid_display_name', 'a stored invalid name is never put in a signature');
reset role;
update public.user_profiles set full_name = 'Vera Victim' where id = tests.get_supabase_uid('hd_vera');
select tests.authenticate_as('hd_vera');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('hd_vera', '447400700001'), e'\u200B')),
  '22023 empty_body', 'a body of one zero-width space is empty');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('hd_vera', '447400700001'), e' \n\u2028\t\uFEFF')),
  '22023 empty_body', 'so is one of separators and format characters');
select is(tests.refusal_of(format('select public.send_whatsapp_message(%L, %L)', tests.conversation_id('hd_vera', '447400700001'), 'The gate is fixed')),
  'no error', 'a real body goes');
reset role;
select is((select concat_ws(e'\n', landlord_signature, body) from public.whatsapp_messages where body = 'The gate is fixed'),
  e'From Vera Victim via ZenRent:\nThe gate is fixed', 'the signature is the validated name');
select is(private.fit_text(e'12 Rosemary\u202E Lane\n\u200BFlat 1', 72), '12 Rosemary Lane Flat 1',
  'user text put into WhatsApp fields loses its bidi overrides, zero-width characters and line breaks');

-- -- phone_e164 is derived, never written ------------------------------------------------------
select tests.authenticate_as('hd_hank');
update public.tenants set phone_e164 = '447400700001' where name = 'Other phone';
select results_eq($$ select phone, phone_e164 from public.tenants where name = 'Other phone' $$,
  $$ values ('07400 700003', '447400700003') $$, 'writing phone_e164 directly does not change the routing key');
reset role;
select is((select count(*)::int from private.tenant_landlord_routing where tenant_phone = '447400700001'
           and landlord_id = tests.get_supabase_uid('hd_hank')), 1, 'and routing is unchanged');

-- -- "not found" and "not yours" are one answer --------------------------------------------------
select tests.authenticate_as('hd_hank');
select is(tests.error_of(format('insert into public.leases (tenant_id, property_id, start_date) values (%L, %L, %L)',
            (select t.id from public.tenants t where t.user_id = tests.get_supabase_uid('hd_vera') limit 1),
            'a5000000-0050-4000-8000-000000000001', '2025-01-01')),
          tests.error_of(format('insert into public.leases (tenant_id, property_id, start_date) values (%L, %L, %L)',
            gen_random_uuid(), 'a5000000-0050-4000-8000-000000000001', '2025-01-01')),
  'a lease with Vera''s tenant and with no tenant at all fail identically');
select is(tests.affected(format('update public.tenants set name = %L where id = %L', 'x',
            (select t.id from public.tenants t where t.user_id = tests.get_supabase_uid('hd_vera') limit 1))),
          tests.affected(format('update public.tenants set name = %L where id = %L', 'x', gen_random_uuid())),
  'updating Vera''s tenant and a tenant that does not exist touch the same nothing');
select is(tests.error_of(format('select public.start_whatsapp_conversation(%L)',
            (select t.id from public.tenants t where t.user_id = tests.get_supabase_uid('hd_vera') limit 1))),
          tests.error_of(format('select public.start_whatsapp_conversation(%L)', gen_random_uuid())),
  'opening a conversation with Vera''s tenant and with nobody fail identically');

-- -- Dead letters are support's ----------------------------------------------------------------------
select is(tests.refusal_of($$ select * from public.list_dead_letters() $$), '42501 support_only', 'a landlord cannot list dead letters');
select throws_ok($$ select public.dead_letter_webhook('{', 'not JSON') $$, '42501', null, 'nor store one');
select tests.authenticate_as_service_role();
select isnt(public.dead_letter_webhook('{"object": "whatsapp_business_account", "entry": [[[[', 'not JSON: unexpected end'), null,
  'the service role keeps a body the shim could not parse');
select is(tests.refusal_of($$ select public.dead_letter_webhook('{', ' ') $$), '22023 invalid_value', 'with a reason');
reset role;
select tests.authenticate_as('hd_sup');
select results_eq($$ select source, error_code, body, error_message from public.list_dead_letters(null, 1) $$,
  $$ values ('body', '22023', '{"object": "whatsapp_business_account", "entry": [[[[', 'not JSON: unexpected end') $$,
  'support lists it, newest first');
select ok((public.whatsapp_service_status() ->> 'dead_letters_last_24h')::int >= 1, 'and the status page counts it');
select tests.clear_authentication();
select throws_ok($$ select * from public.list_dead_letters() $$, '42501', null, 'anon cannot list dead letters');
reset role;

select * from finish();
rollback;
