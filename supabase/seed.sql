-- Demo data for the local stack (loaded by scripts/db reset). Fixed ids so that docs and
-- manual tries can refer to them. Phones are typed the way landlords really type them.
--
-- The central ZenRent number (scripts/run overrides it from WHATSAPP_PHONE_NUMBER_ID).
do $$ begin
  perform public.configure_whatsapp('{"phone_number_id": "100000000000001", "display_phone_number": "15550000001"}');
end $$;

-- Templates approved in WhatsApp Manager for the central number (the consent request is ZenRent's own:
-- "{{1}} ({{2}}) would like to message you on WhatsApp through ZenRent. Is this your landlord?" with
-- quick replies Yes / Not my landlord / Report spam). Registering is for support or the service role.
begin;
set local role service_role;
do $$
begin
  perform public.approve_whatsapp_template('zenrent_consent_request', 'en', 'utility', 2);
  perform public.approve_whatsapp_template('rent_reminder', 'en_GB', 'utility', 3);      -- {{1}} landlord, {{2}} property, {{3}} date
  perform public.approve_whatsapp_template('invoice_ready', 'en_GB', 'utility', 2);
  perform public.approve_whatsapp_template('maintenance_visit', 'en_GB', 'utility', 3);
end
$$;
commit;

-- Landlords: Alice Hart (multi-WABA user with history), Bob Okafor (shares a tenant with Alice),
-- Carol Singh (not yet on WhatsApp). Support: Sam Support.

insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data) values
  ('00000000-0000-4000-a000-00000000a11c', 'authenticated', 'authenticated', 'alice@zenrent.test', '{"provider":"email"}', '{"full_name":"Alice Hart"}'),
  ('00000000-0000-4000-a000-000000000b0b', 'authenticated', 'authenticated', 'bob@zenrent.test',   '{"provider":"email"}', '{"full_name":"Bob Okafor"}'),
  ('00000000-0000-4000-a000-0000000ca201', 'authenticated', 'authenticated', 'carol@zenrent.test', '{"provider":"email"}', '{"full_name":"Carol Singh"}'),
  ('00000000-0000-4000-a000-000000005a55', 'authenticated', 'authenticated', 'support@zenrent.test', '{"provider":"email","role":"support"}', '{"full_name":"Sam Support"}');

insert into public.user_profiles (id, full_name, email, phone, whatsapp_enabled, whatsapp_opted_in_at) values
  ('00000000-0000-4000-a000-00000000a11c', 'Alice Hart',  'alice@zenrent.test', '+44 20 7946 0001', true, '2026-11-01T09:00:00Z'),
  ('00000000-0000-4000-a000-000000000b0b', 'Bob Okafor',  'bob@zenrent.test',   '020 7946 0002',    true, '2026-11-02T09:00:00Z'),
  ('00000000-0000-4000-a000-0000000ca201', 'Carol Singh', 'carol@zenrent.test', null,               false, null);

insert into public.properties (id, user_id, address, city, postcode) values
  ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-00000000a11c', '12 Rosemary Lane, Flat 1', 'London', 'E1 6AN'),
  ('00000000-0000-4000-b000-000000000002', '00000000-0000-4000-a000-00000000a11c', '12 Rosemary Lane, Flat 2', 'London', 'E1 6AN'),
  ('00000000-0000-4000-b000-000000000003', '00000000-0000-4000-a000-000000000b0b', '4 Canal Street', 'Manchester', 'M1 3HE'),
  ('00000000-0000-4000-b000-000000000004', '00000000-0000-4000-a000-0000000ca201', '88 Harbour View', 'Bristol', 'BS1 5DB');

insert into public.tenants (id, user_id, name, phone, email) values
  -- Alice's tenants, phones in mixed formats
  ('00000000-0000-4000-c000-000000000001', '00000000-0000-4000-a000-00000000a11c', 'Tom Baker',     '+44 7700 900123',  'tom@example.test'),
  ('00000000-0000-4000-c000-000000000002', '00000000-0000-4000-a000-00000000a11c', 'Priya Patel',   '07700-900456',     'priya@example.test'),
  ('00000000-0000-4000-c000-000000000003', '00000000-0000-4000-a000-00000000a11c', 'Marta Silva',   '0044 (7700) 900.789', null),
  ('00000000-0000-4000-c000-000000000004', '00000000-0000-4000-a000-00000000a11c', 'Old Tenant',    '07700 900999',     null),
  -- Dan rents a flat from Alice and a parking space from Bob: one phone, two landlords
  ('00000000-0000-4000-c000-000000000005', '00000000-0000-4000-a000-00000000a11c', 'Dan Wright',    '+447700900555',    null),
  ('00000000-0000-4000-c000-000000000006', '00000000-0000-4000-a000-000000000b0b', 'Daniel Wright', '07700 900 555',    null),
  -- Bob's and Carol's own tenants
  ('00000000-0000-4000-c000-000000000007', '00000000-0000-4000-a000-000000000b0b', 'Lucia Gomez',   '+34 612 345 678',  null),
  ('00000000-0000-4000-c000-000000000008', '00000000-0000-4000-a000-0000000ca201', 'Sara Nilsson',  '07700 900 321',    null);

insert into public.leases (tenant_id, property_id, status, start_date, end_date) values
  ('00000000-0000-4000-c000-000000000001', '00000000-0000-4000-b000-000000000001', 'active', '2025-01-01', null),
  ('00000000-0000-4000-c000-000000000002', '00000000-0000-4000-b000-000000000002', 'active', '2025-06-01', null),
  ('00000000-0000-4000-c000-000000000003', '00000000-0000-4000-b000-000000000002', 'pending', '2027-01-01', null),
  ('00000000-0000-4000-c000-000000000004', '00000000-0000-4000-b000-000000000001', 'ended',  '2022-01-01', '2024-12-31'),
  ('00000000-0000-4000-c000-000000000005', '00000000-0000-4000-b000-000000000002', 'active', '2025-03-01', null),
  ('00000000-0000-4000-c000-000000000006', '00000000-0000-4000-b000-000000000003', 'active', '2025-04-01', null),
  ('00000000-0000-4000-c000-000000000007', '00000000-0000-4000-b000-000000000003', 'active', '2024-09-01', null),
  ('00000000-0000-4000-c000-000000000008', '00000000-0000-4000-b000-000000000004', 'active', '2025-02-01', null);

-- Alice's and Bob's old WhatsApp Business Accounts, as phase 3 leaves them (retired, no credentials).
insert into public.whatsapp_accounts (id, user_id, waba_id, phone_number_id, display_phone_number, status, access_token_ref, connected_at) values
  ('00000000-0000-4000-d000-000000000001', '00000000-0000-4000-a000-00000000a11c', '102290129340398', '106540352242922', '+44 20 7946 0001', 'migrated_to_centralized', null, '2024-03-01T09:00:00Z'),
  ('00000000-0000-4000-d000-000000000002', '00000000-0000-4000-a000-000000000b0b', '102290129340777', '106540352242777', '+44 20 7946 0002', 'disconnected', null, '2024-05-01T09:00:00Z');

-- Alice's history from her own WABA, not yet moved into conversations: scripts/db reset runs
-- scripts/migrate-history, which files it (outgoing messages by to_phone, unknown numbers held).
insert into public.whatsapp_messages (user_id, wamid, from_phone, to_phone, direction, type, body, status, sent_at) values
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0001', '447700900123', '442079460001', 'incoming', 'text', 'Hi Alice, the boiler is making a noise again.', 'read', '2026-10-01T08:15:00Z'),
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0002', '442079460001', '447700900123', 'outgoing', 'text', 'Thanks Tom, an engineer will come on Thursday.', 'read', '2026-10-01T08:40:00Z'),
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0003', '+44 7700 900456', '442079460001', 'incoming', 'text', 'Rent sent, thank you!', 'read', '2026-10-02T10:00:00Z'),
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0004', '442079460001', '07700 900456', 'outgoing', 'text', 'Received, thanks Priya.', 'delivered', '2026-10-02T10:05:00Z'),
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0005', '447700900999', '442079460001', 'incoming', 'text', 'Can I have my deposit back?', 'read', '2024-12-20T12:00:00Z'),
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0006', '447911123456', '442079460001', 'incoming', 'text', 'Is the flat still available?', 'read', '2026-09-15T17:30:00Z'),
  ('00000000-0000-4000-a000-00000000a11c', 'wamid.SEED0007', '447700900555', '442079460001', 'incoming', 'image', null, 'read', '2026-10-05T19:00:00Z');
