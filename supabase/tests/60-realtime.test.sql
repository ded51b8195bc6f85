-- The live inbox over Realtime Broadcast (issue 16): who may join which private topic, checked
-- exactly as the Realtime server checks a join (a probe row for the topic, the user's role,
-- realtime.topic, request.jwt.claims and request.jwt.claim.sub set locally, `select` for read,
-- `insert` under a savepoint for write, everything rolled back), and what each change broadcasts.
-- Phones 4474008000xx are used only here.
begin;
select plan(31);

select tests.add_landlord('rt_olga', 'Olga Owner');
select tests.add_landlord('rt_sam', 'Sam Shared');
select tests.add_landlord('rt_hal', 'Hal Hostile');
select tests.create_supabase_user('rt_sup', 'sid@support.zenrent.test', '{"role": "support"}');
select tests.add_tenancy('rt_olga', 'Tia', '07400 800001', '1 Olga Street');
select tests.add_tenancy('rt_olga', 'Uma', '07400 800002', '2 Olga Street');   -- shared with Sam
select tests.add_tenancy('rt_sam', 'Uma', '07400 800002', '3 Sam Street');
select tests.link('rt_olga', '447400800002');

-- Realtime's join check, as the server runs it: 'read' or 'write' for one user (null: anon) and topic.
create function tests.realtime_can(identifier text, topic text, op text)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  probe uuid := gen_random_uuid();
  allowed boolean;
begin
  begin
    insert into realtime.messages (id, topic, extension, private, event, payload)
    values (probe, realtime_can.topic, 'broadcast', true, 'probe', '{}');
    if identifier is null then
      perform tests.clear_authentication();
    else
      perform tests.authenticate_as(identifier);
    end if;
    perform set_config('realtime.topic', realtime_can.topic, true);
    perform set_config('request.jwt.claim.sub', coalesce(auth.uid()::text, ''), true);
    if op = 'read' then
      allowed := exists (select 1 from realtime.messages m where m.id = probe);
    else
      begin
        insert into realtime.messages (topic, extension, private, event, payload)
        values (realtime_can.topic, 'broadcast', true, 'probe', '{}');
        allowed := true;
      exception when insufficient_privilege then
        allowed := false;
      end;
    end if;
    raise exception using errcode = 'P0001', message = 'roll back the probe', detail = allowed::text;
  exception when raise_exception then
    get stacked diagnostics allowed = pg_exception_detail;
  end;
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', '', true);
  perform set_config('realtime.topic', '', true);
  return allowed;
end
$$;

-- -- Who may join which topic ------------------------------------------------------------------
select ok(tests.realtime_can('rt_olga', 'landlord:' || tests.get_supabase_uid('rt_olga'), 'read'), 'the owner may read her own topic');
select ok(not tests.realtime_can('rt_olga', 'landlord:' || tests.get_supabase_uid('rt_olga'), 'write'), 'but not send on it');
select ok(not tests.realtime_can('rt_sam', 'landlord:' || tests.get_supabase_uid('rt_olga'), 'read'),
  'a landlord sharing her tenant''s phone may not read her topic');
select ok(not tests.realtime_can('rt_hal', 'landlord:' || tests.get_supabase_uid('rt_olga'), 'read'), 'nor may a hostile landlord');
select ok(not tests.realtime_can('rt_hal', 'landlord:' || tests.get_supabase_uid('rt_olga'), 'write'), 'nor send on it');
select ok(not tests.realtime_can('rt_hal', 'support', 'read'), 'a landlord may not read the support topic');
select ok(tests.realtime_can('rt_sup', 'support', 'read'), 'support may read the support topic');
select ok(not tests.realtime_can('rt_sup', 'support', 'write'), 'but not send on it');
select ok(not tests.realtime_can('rt_sup', 'landlord:' || tests.get_supabase_uid('rt_olga'), 'read'), 'support may not read a landlord''s topic');
select ok(not tests.realtime_can(null, 'landlord:' || tests.get_supabase_uid('rt_olga'), 'read'), 'anon may not read a landlord''s topic');
select ok(not tests.realtime_can(null, 'support', 'read'), 'anon may not read the support topic');
select ok(not tests.realtime_can(null, 'support', 'write'), 'anon may not send');
select ok(not tests.realtime_can('rt_olga', 'landlord:' || tests.get_supabase_uid('rt_olga') || ':x', 'read'),
  'a look-alike topic is not hers');
select ok(not tests.realtime_can('rt_olga', 'realtime:public:whatsapp_messages', 'read'), 'Postgres Changes topics give nothing');

-- -- What each change broadcasts --------------------------------------------------------------------
select set_config('tests.before', (select count(*) from realtime.messages)::text, true);
select tests.route_text('wamid.RT_1', '447400800001', 'Tia: the heating is off');
select results_eq($$ select topic, event, private from realtime.messages m where m.inserted_at >= now()
                     and (m.payload ->> 'id') = tests.message_id('wamid.RT_1')::text $$,
  format($f$ values (%L, 'message', true) $f$, 'landlord:' || tests.get_supabase_uid('rt_olga')),
  'a routed message is exactly one broadcast, private, on its landlord''s topic');
select is((select count(*)::int from realtime.messages) - current_setting('tests.before')::int, 1,
  'and no other row (no conversation event for the counters it bumped)');
select results_eq($$ select b.payload ->> 'body', (b.payload -> 'conversation' ->> 'unread_count')::int, b.payload ? 'raw',
                            b.payload ? 'routing_metadata', b.payload ? 'tenant_id'
                     from tests.broadcasts('landlord:' || tests.get_supabase_uid('rt_olga'), 'message') b
                     where b.payload ->> 'id' = tests.message_id('wamid.RT_1')::text $$,
  $$ values ('Tia: the heating is off', 1, false, false, false) $$,
  'the payload is what an inbox list shows: the text and the counters, nothing else');
select tests.route_text('wamid.RT_2', '447400800002', 'Uma: to Olga');
select is((select count(*)::int from realtime.messages m where (m.payload ->> 'id') = tests.message_id('wamid.RT_2')::text
           and m.topic = 'landlord:' || tests.get_supabase_uid('rt_sam')), 0,
  'a message for Olga from a phone Sam shares is not broadcast on Sam''s topic');
select tests.add_tenancy('rt_hal', 'Vik', '07400 800003', '4 Hal Road');
select tests.add_tenancy('rt_sam', 'Vik', '07400 800003', '5 Sam Road');
select set_config('tests.before', (select count(*) from realtime.messages)::text, true);
select is(tests.route_text('wamid.RT_3', '447400800003', 'Who is this for?') ->> 'routing_status', 'ambiguous', 'a held message');
select results_eq($$ select topic, event from realtime.messages m where (m.payload ->> 'id') = tests.message_id('wamid.RT_3')::text $$,
  $$ values ('support', 'held') $$, 'is broadcast only on support, as held');
select is((select count(*)::int from realtime.messages m where m.topic like 'landlord:%'
           and m.inserted_at >= now() and m.payload ->> 'id' = tests.message_id('wamid.RT_3')::text), 0,
  'and on no landlord''s topic');
select tests.authenticate_as('rt_sup');
select public.assign_held_message(tests.message_id('wamid.RT_3'), tests.get_supabase_uid('rt_sam'), 0, 'Vik phoned');
reset role;
select results_eq($$ select topic, event from realtime.messages m where (m.payload ->> 'id') = tests.message_id('wamid.RT_3')::text
                     and m.event <> 'held' order by m.topic $$,
  format($f$ values (%L, 'message'), ('support', 'resolved') $f$, 'landlord:' || tests.get_supabase_uid('rt_sam')),
  'assigned: a message on Sam''s topic and resolved on support');
select tests.authenticate_as('rt_olga');
select public.mark_conversation_read(tests.conversation_id('rt_olga', '447400800001'));
select public.set_conversation_status(tests.conversation_id('rt_olga', '447400800001'), 'archived');
reset role;
select results_eq($$ select b.payload ->> 'status', (b.payload ->> 'unread_count')::int
                     from tests.broadcasts('landlord:' || tests.get_supabase_uid('rt_olga'), 'conversation') b
                     where b.payload ->> 'id' = tests.conversation_id('rt_olga', '447400800001')::text order by 1 $$,
  $$ values ('active', 0), ('archived', 0) $$, 'reading and archiving are conversation broadcasts');
select tests.authenticate_as('rt_olga');
select public.send_whatsapp_message(tests.conversation_id('rt_olga', '447400800001'), 'Engineer at 9');
reset role;
select is((select count(*)::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('rt_olga'), 'message') b
           where b.payload ->> 'body' = 'Engineer at 9' and b.payload ->> 'status' = 'queued'), 1,
  'her own reply is a message broadcast too (other devices of hers see it)');
select tests.authenticate_as_service_role();
select count(*) from public.claim_outbound_messages(100);
select public.complete_outbound_message((select id from public.whatsapp_messages where body = 'Engineer at 9'), 'wamid.RT_OUT');
select public.record_message_status('wamid.RT_OUT', 'delivered', now());
select public.record_message_status('wamid.RT_OUT', 'read', now());
reset role;
select results_eq($$ select b.payload ->> 'status' from tests.broadcasts('landlord:' || tests.get_supabase_uid('rt_olga'), 'message_status') b
                     where b.payload ->> 'id' = (select id::text from public.whatsapp_messages where body = 'Engineer at 9') order by 1 $$,
  $$ values ('delivered'), ('read'), ('sending'), ('sent') $$, 'sending, sent, delivered, read: one message_status broadcast each');
select public.record_message_status('wamid.RT_OUT', 'delivered', now());
select is((select count(*)::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('rt_olga'), 'message_status') b
           where b.payload ->> 'id' = (select id::text from public.whatsapp_messages where body = 'Engineer at 9')), 4,
  'a late, repeated status changes nothing and broadcasts nothing');
select is_empty($$ select 1 from realtime.messages m where m.topic not like 'landlord:%' and m.topic <> 'support' $$,
  'nothing is broadcast on any other topic');
select ok((select bool_and(m.private) from realtime.messages m), 'every broadcast is private');
select is((select count(*)::int from tests.broadcasts('landlord:' || tests.get_supabase_uid('rt_hal'))), 0,
  'the hostile landlord''s topic heard nothing of it all');
select is_empty($$ select 1 from pg_policies where schemaname = 'realtime' and tablename = 'messages' and cmd in ('INSERT', 'UPDATE', 'DELETE', 'ALL') $$,
  'no policy lets a client write to realtime.messages');
select is((select count(*)::int from pg_policies where schemaname = 'realtime' and tablename = 'messages' and 'anon' = any(roles)), 0,
  'no policy is for anon');

select * from finish();
rollback;
