-- The CHECK rules of whatsapp_messages and whatsapp_conversations, kept in one function each since
-- 20261129180200 (a routed message's CPU): every former constraint still refuses what it refused
-- (23514), on insert and on update, and valid rows, nulls included, pass.
begin;
select plan(19);

-- The SQLSTATE of a statement, or 'no error'.
create function pg_temp.state_of(sql text) returns text language sql as $$ select split_part(tests.error_of(sql), ':', 1) $$;

select tests.create_supabase_user('rv_landlord');
insert into public.user_profiles (id, full_name, whatsapp_enabled, whatsapp_opted_in_at)
values (tests.get_supabase_uid('rv_landlord'), 'Rita Values', true, now());
insert into public.whatsapp_conversations (id, landlord_id, tenant_phone)
values ('c1400000-0000-4000-8000-000000000001', tests.get_supabase_uid('rv_landlord'), '447700901401');

select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type) values ('wamid.rv.d', 'sideways', 'text') $$), '23514', 'direction: incoming or outgoing');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type) values ('wamid.rv.t', 'incoming', 'hologram') $$), '23514', 'type: one of the Cloud API''s');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, status) values ('wamid.rv.s', 'incoming', 'text', 'teleported') $$), '23514', 'status: one of the known ones');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, routing_status) values ('wamid.rv.r', 'incoming', 'text', 'lost') $$), '23514', 'routing_status: one of the known ones');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, media_status) values ('wamid.rv.m', 'incoming', 'image', 'maybe') $$), '23514', 'media_status: pending, stored or failed');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, routing_status, outbound_kind) values ('wamid.rv.k', 'outgoing', 'text', 'outbound', 'fax') $$), '23514', 'outbound_kind: one of the known ones');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, tenant_phone) values ('wamid.rv.p', 'incoming', 'text', '+44 7700 900123') $$), '23514', 'tenant_phone: E.164 digits only');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, attempt_count) values ('wamid.rv.a', 'outgoing', 'text', -1) $$), '23514', 'attempt_count: never negative');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, routing_status) values ('wamid.rv.o', 'outgoing', 'text', 'outbound') $$), '23514', 'a routed outgoing message says its outbound_kind');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, routing_status) values ('wamid.rv.l', 'incoming', 'text', 'delivered') $$), '23514', 'a delivered message has its landlord and conversation');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type, routing_status, outbound_kind, landlord_id, conversation_id)
  values ('wamid.rv.ok', 'outgoing', 'text', 'outbound', 'text', tests.get_supabase_uid('rv_landlord'), 'c1400000-0000-4000-8000-000000000001') $$), 'no error',
  'a routed outgoing text with its landlord and conversation is valid');
select is(pg_temp.state_of($$ insert into public.whatsapp_messages (wamid, direction, type) values ('wamid.rv.n', 'incoming', 'text') $$), 'no error',
  'nulls pass, as they passed each former constraint');
select is(pg_temp.state_of($$ update public.whatsapp_messages set status = 'teleported' where wamid = 'wamid.rv.n' $$), '23514', 'updates are checked too');

select is(pg_temp.state_of($$ insert into public.whatsapp_conversations (landlord_id, tenant_phone) values (tests.get_supabase_uid('rv_landlord'), '07700901402') $$), '23514', 'conversation tenant_phone: E.164 digits only');
select is(pg_temp.state_of($$ update public.whatsapp_conversations set status = 'snoozed' where id = 'c1400000-0000-4000-8000-000000000001' $$), '23514', 'conversation status: active, archived or blocked');
select is(pg_temp.state_of($$ update public.whatsapp_conversations set unread_count = -1 where id = 'c1400000-0000-4000-8000-000000000001' $$), '23514', 'unread_count: never negative');
select is(pg_temp.state_of($$ update public.whatsapp_conversations set last_message_preview = repeat('x', 161) where id = 'c1400000-0000-4000-8000-000000000001' $$), '23514', 'the preview: at most 160 characters');
select is(pg_temp.state_of($$ update public.whatsapp_conversations set last_message_at = now() - interval '1 hour', last_inbound_at = now() where id = 'c1400000-0000-4000-8000-000000000001' $$), '23514', 'the last inbound message is not after the last message');
select is(pg_temp.state_of($$ update public.whatsapp_conversations set last_message_at = now(), last_inbound_at = now() - interval '1 minute', unread_count = 3 where id = 'c1400000-0000-4000-8000-000000000001' $$), 'no error', 'a valid conversation update passes');

select * from finish();
rollback;
