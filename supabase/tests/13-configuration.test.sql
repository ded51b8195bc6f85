-- Changing the default country re-reads every tenant's national phone number (and routing
-- follows); TRUNCATE, which fires no row triggers, still leaves the routing table exact.
begin;
select plan(9);

select tests.create_supabase_user('cfg_landlord');
insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at)
values (tests.get_supabase_uid('cfg_landlord'), 'Cora Config', true, now());
insert into public.properties (id, user_id, address)
values ('a1300000-0000-4000-8000-000000000001', tests.get_supabase_uid('cfg_landlord'), '13 Config Court');
insert into public.tenants (id, user_id, name, phone) values
  ('b1300000-0000-4000-8000-000000000001', tests.get_supabase_uid('cfg_landlord'), 'Nat National', '020 7946 0999'),
  ('b1300000-0000-4000-8000-000000000002', tests.get_supabase_uid('cfg_landlord'), 'Ina International', '+44 7700 900998');
insert into public.leases (tenant_id, property_id, status, start_date) values
  ('b1300000-0000-4000-8000-000000000001', 'a1300000-0000-4000-8000-000000000001', 'active', '2025-01-01'),
  ('b1300000-0000-4000-8000-000000000002', 'a1300000-0000-4000-8000-000000000001', 'active', '2025-01-01');

select set_eq($$ select tenant_phone from private.tenant_landlord_routing where landlord_id = tests.get_supabase_uid('cfg_landlord') $$,
  array['442079460999', '447700900998'], 'read in GB, the national number routes as +44');

select public.configure_whatsapp('{"default_country": "US"}');
select is((select phone_e164 from public.tenants where id = 'b1300000-0000-4000-8000-000000000001'), null,
  'read in the US, the British national number is not a phone number any more');
select set_eq($$ select tenant_phone from private.tenant_landlord_routing where landlord_id = tests.get_supabase_uid('cfg_landlord') $$,
  array['447700900998'], 'the routing table follows in the same transaction; the international number is unaffected');

select public.configure_whatsapp('{"default_country": "GB"}');
select set_eq($$ select tenant_phone from private.tenant_landlord_routing where landlord_id = tests.get_supabase_uid('cfg_landlord') $$,
  array['442079460999', '447700900998'], 'back to GB, the number routes again');

-- The live inbox is Realtime broadcast: the pg_notify switch is gone, the broadcast always goes.
select is(tests.refusal_of($$ select public.configure_whatsapp('{"notify_listeners": false}') $$), '22023 invalid_value',
  'notify_listeners is no setting any more');
select tests.authenticate_as_service_role();
select public.route_inbound_message('{"from": "447700900998", "id": "wamid.CFG_1", "type": "text", "text": {"body": "hi"}}');
reset role;
select is((select count(*) from tests.broadcasts('landlord:' || tests.get_supabase_uid('cfg_landlord'), 'message') b
           where b.payload ->> 'id' = tests.message_id('wamid.CFG_1')::text), 1::bigint, 'the landlord''s topic gets the message');

truncate public.leases;
select is((select count(*) from private.tenant_landlord_routing), 0::bigint, 'TRUNCATE leases empties the routing table');
insert into public.leases (tenant_id, property_id, status, start_date)
values ('b1300000-0000-4000-8000-000000000002', 'a1300000-0000-4000-8000-000000000001', 'active', '2025-01-01');
select set_eq($$ select tenant_phone from private.tenant_landlord_routing $$, array['447700900998'],
  'and the triggers keep it exact afterwards');
select is_empty($$ select * from private.tenant_landlord_routing_source except select * from private.tenant_landlord_routing $$,
  'the table equals its defining query');

select * from finish();
rollback;
