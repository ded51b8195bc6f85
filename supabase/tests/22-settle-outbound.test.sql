-- settle_outbound_message: how a person settles a reply stuck in needs_review.
begin;
select plan(10);

select tests.create_supabase_user('so_landlord');
select tests.create_supabase_user('so_support', null, '{"role": "support"}');
insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at)
values (tests.get_supabase_uid('so_landlord'), 'Sam Settle', true, now());
insert into public.whatsapp_messages (id, direction, type, body, status, routing_status, outbound_kind, landlord_id,
                                      tenant_phone, to_phone, is_from_tenant, claimed_at, attempt_count)
values ('c5000000-0000-4000-8000-000000000001', 'outgoing', 'text', 'stuck one', 'needs_review', 'outbound', 'text',
        tests.get_supabase_uid('so_landlord'), '447400900001', '447400900001', false, now() - interval '1 hour', 1),
       ('c5000000-0000-4000-8000-000000000002', 'outgoing', 'text', 'stuck two', 'needs_review', 'outbound', 'text',
        tests.get_supabase_uid('so_landlord'), '447400900001', '447400900001', false, now() - interval '1 hour', 1),
       ('c5000000-0000-4000-8000-000000000003', 'outgoing', 'text', 'sent fine', 'sent', 'outbound', 'text',
        tests.get_supabase_uid('so_landlord'), '447400900001', '447400900001', false, now() - interval '1 hour', 1);

-- The landlord cannot settle, not even their own message.
select tests.authenticate_as('so_landlord');
select is(tests.refusal_of($$ select public.settle_outbound_message('c5000000-0000-4000-8000-000000000001', 'requeue', 'checked') $$), '42501 support_only', 'a landlord cannot settle a message (42501)');
reset role;
select tests.clear_authentication();
select throws_ok($$ select public.settle_outbound_message('c5000000-0000-4000-8000-000000000001', 'requeue', 'checked') $$,
  '42501', null, 'anon cannot execute it (42501)');
reset role;

select tests.authenticate_as('so_support');
select throws_ok($$ select public.settle_outbound_message('c5000000-0000-4000-8000-000000000001', 'resend', 'checked') $$,
  '22023', null, 'an unknown outcome is refused (22023)');
select is(tests.refusal_of($$ select public.settle_outbound_message('c5000000-0000-4000-8000-000000000001', 'requeue', '  ') $$), '22023 invalid_value', 'a note is required (22023)');
select throws_ok($$ select public.settle_outbound_message('c5000000-0000-4000-8000-000000000003', 'requeue', 'checked') $$,
  'P0002', null, 'a message not in needs_review cannot be settled (P0002)');
select is(public.settle_outbound_message('c5000000-0000-4000-8000-000000000001', 'requeue', 'not in the tenant''s chat') ->> 'status',
  'queued', 'support re-queues a message the tenant did not get');
reset role;
select results_eq($$ select status, next_attempt_at <= now() from public.whatsapp_messages where id = 'c5000000-0000-4000-8000-000000000001' $$,
  $$ values ('queued', true) $$, 'it is due to be sent again');

select tests.authenticate_as_service_role();
select is(public.settle_outbound_message('c5000000-0000-4000-8000-000000000002', 'failed', 'tenant changed number') ->> 'status',
  'failed', 'the service role can mark one failed');
reset role;
select is((select error_title from public.whatsapp_messages where id = 'c5000000-0000-4000-8000-000000000002'),
  'failed after review: tenant changed number', 'the note is kept with the failure');
select results_eq($$ select action, actor_kind, actor_id, reason from private.support_audit_log
                    where message_id in ('c5000000-0000-4000-8000-000000000001', 'c5000000-0000-4000-8000-000000000002') order by id $$,
  $$ values ('requeue_outbound', 'support', tests.get_supabase_uid('so_support'), 'not in the tenant''s chat'),
            ('fail_outbound', 'service', null::uuid, 'tenant changed number') $$,
  'both settlements are audited with who and why');

select * from finish();
rollback;
