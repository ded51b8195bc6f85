-- Test helpers (in the `tests` schema, committed so later files can use them) and the schema
-- and privilege checks that hold for the whole database.
--
-- Helpers, in the manner of supabase-test-helpers:
--   tests.create_supabase_user(identifier, email, app_metadata) -> uuid
--   tests.get_supabase_uid(identifier)                          -> uuid
--   tests.authenticate_as(identifier)        role authenticated, JWT claims of that user
--   tests.authenticate_as_service_role()     role service_role
--   tests.clear_authentication()             role anon, anon JWT claims
--   tests.error_of(sql)                      'SQLSTATE: message (hint: ...)' or 'no error'
--   tests.refusal_of(sql)                    'SQLSTATE keyword' (the detail keyword) or 'no error'
-- Builders and lookups shared by every file (defined here only):
--   tests.unix_ts(seconds_ago) / tests.at(seconds_ago)    Meta's Unix-seconds timestamps
--   tests.text_message(wamid, from, body, seconds_ago, reply_to)   a Cloud API messages[] element
--   tests.route_as_webhook(message, contact, metadata)    route_inbound_message as the service role
--   tests.route_text(wamid, from, body, seconds_ago, reply_to)     both of the above at once
--   tests.outbound(identifier, phone, wamid, seconds_ago, status)  a landlord's sent message
--   tests.message_id(wamid or body) / tests.message(wamid or body) / tests.conversation_id(identifier, phone)
--   tests.conversation(identifier, phone) / tests.routing_metadata(message id) / tests.raw(message id)
--   tests.held_count() / tests.system_replies(phone, reason) / tests.system_reply_id(phone)
--   tests.affected(sql)                      rows a statement touched
-- All switches are transaction-local (set_config(..., true)), like PostgREST's.
begin;

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

create or replace function tests.create_supabase_user(identifier text, email text default null, app_metadata jsonb default '{}')
returns uuid
language plpgsql
security definer -- writes auth.users, which test roles cannot
set search_path = ''
as $$
declare
  user_id uuid := gen_random_uuid();
begin
  insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data)
  values (user_id, 'authenticated', 'authenticated',
          coalesce(create_supabase_user.email, identifier || '@test.zenrent'),
          '{"provider":"email"}'::jsonb || coalesce(app_metadata, '{}'::jsonb),
          jsonb_build_object('test_identifier', identifier));
  return user_id;
end
$$;

create or replace function tests.get_supabase_uid(identifier text)
returns uuid
language sql
stable
security definer -- reads auth.users, which test roles cannot
set search_path = ''
as $$
  select u.id from auth.users u where u.raw_user_meta_data ->> 'test_identifier' = get_supabase_uid.identifier
$$;

create or replace function tests.jwt_claims_for(identifier text)
returns jsonb
language plpgsql
stable
security definer -- reads auth.users to build the claims Supabase would put in the JWT
set search_path = ''
as $$
declare
  u auth.users;
begin
  select * into u from auth.users where raw_user_meta_data ->> 'test_identifier' = identifier;
  if u.id is null then
    raise exception using errcode = 'P0002', message = format('no test user %L', identifier),
      hint = 'create it first with tests.create_supabase_user()';
  end if;
  return jsonb_build_object(
    'sub', u.id, 'role', 'authenticated', 'aud', 'authenticated', 'email', u.email,
    'app_metadata', coalesce(u.raw_app_meta_data, '{}'), 'user_metadata', coalesce(u.raw_user_meta_data, '{}'),
    'exp', extract(epoch from now() + interval '1 hour')::bigint);
end
$$;

create or replace function tests.authenticate_as(identifier text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', tests.jwt_claims_for(identifier)::text, true);
  perform set_config('role', 'authenticated', true);
end
$$;

create or replace function tests.authenticate_as_service_role()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  perform set_config('role', 'service_role', true);
end
$$;

create or replace function tests.clear_authentication()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
  perform set_config('role', 'anon', true);
end
$$;

-- "SQLSTATE: message (hint: ...)" of a statement, or 'no error': compares whole refusals at once.
create or replace function tests.error_of(sql text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  st text;
  msg text;
  hnt text;
begin
  execute sql;
  return 'no error';
exception when others then
  get stacked diagnostics st = returned_sqlstate, msg = message_text, hnt = pg_exception_hint;
  return st || ': ' || msg || ' (hint: ' || coalesce(hnt, '') || ')';
end
$$;

-- 'SQLSTATE keyword' of a refusal (the stable keyword our functions put in detail), or 'no error':
-- what clients match on, never the message text.
create or replace function tests.refusal_of(sql text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  st text;
  dtl text;
begin
  execute sql;
  return 'no error';
exception when others then
  get stacked diagnostics st = returned_sqlstate, dtl = pg_exception_detail;
  return st || ' ' || coalesce(nullif(dtl, ''), '-');
end
$$;

-- Rows a statement touched (0 when RLS hides them).
create or replace function tests.affected(sql text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  n integer;
begin
  execute sql;
  get diagnostics n = row_count;
  return n;
end
$$;

-- Cloud API builders ---------------------------------------------------------------------------
-- Unix seconds `seconds_ago` before the transaction's now(), as Meta writes timestamps.
create or replace function tests.unix_ts(seconds_ago int default 0)
returns text language sql stable set search_path = '' as $$
  select (extract(epoch from now())::bigint - seconds_ago)::text
$$;
create or replace function tests.at(seconds_ago int default 0)
returns timestamptz language sql stable set search_path = '' as $$
  select to_timestamp(tests.unix_ts(seconds_ago)::bigint)
$$;

-- One element of a webhook's value.messages[]: a text from `sender`, optionally a reply.
create or replace function tests.text_message(wamid text, sender text, body text default 'hello',
                                              seconds_ago int default 0, reply_to text default null)
returns jsonb language sql stable set search_path = '' as $$
  select jsonb_build_object('from', sender, 'id', wamid, 'timestamp', tests.unix_ts(seconds_ago), 'type', 'text',
                            'text', jsonb_build_object('body', body))
         || case when reply_to is null then '{}'::jsonb
                 else jsonb_build_object('context', jsonb_build_object('from', '15550001111', 'id', reply_to)) end
$$;

-- Route one message as the webhook does (service role), then back to the caller's role.
create or replace function tests.route_as_webhook(message jsonb, contact jsonb default null, metadata jsonb default null)
returns jsonb language plpgsql set search_path = '' as $$
declare
  before_role text := current_setting('role');
  before_claims text := current_setting('request.jwt.claims', true);
  r jsonb;
begin
  perform tests.authenticate_as_service_role();
  r := public.route_inbound_message(message, contact, metadata);
  perform set_config('request.jwt.claims', coalesce(before_claims, ''), true);
  perform set_config('role', before_role, true);
  return r;
end
$$;

create or replace function tests.route_text(wamid text, sender text, body text default 'hello',
                                            seconds_ago int default 0, reply_to text default null)
returns jsonb language sql set search_path = '' as $$
  select tests.route_as_webhook(tests.text_message(wamid, sender, body, seconds_ago, reply_to))
$$;

-- A landlord's outbound text to a phone as the sender leaves it (in their conversation, created if needed).
create or replace function tests.outbound(identifier text, phone text, wamid text, seconds_ago int default 0,
                                          status text default 'sent')
returns uuid language plpgsql security definer set search_path = '' as $$
declare
  landlord uuid := tests.get_supabase_uid(identifier);
  conv uuid;
  id uuid;
begin
  insert into public.whatsapp_conversations as c (landlord_id, tenant_phone) values (landlord, phone)
    on conflict on constraint whatsapp_conversations_landlord_phone_key do update set landlord_id = c.landlord_id
    returning c.id into conv;
  insert into public.whatsapp_messages (wamid, direction, is_from_tenant, type, body, status, routing_status, outbound_kind,
                                        landlord_id, conversation_id, tenant_phone, to_phone, landlord_signature, sent_at)
  values (wamid, 'outgoing', false, 'text', 'A message from your landlord', status, 'outbound', 'text',
          landlord, conv, phone, phone, 'From ' || identifier || ' via ZenRent:', now() - make_interval(secs => seconds_ago))
  returning whatsapp_messages.id into id;
  return id;
end
$$;

-- Lookups, usable from every actor's block (security definer: test bookkeeping only) ------------
create or replace function tests.message_id(wamid_or_body text)
returns uuid language sql stable security definer set search_path = '' as $$
  select m.id from public.whatsapp_messages m where m.wamid = wamid_or_body or m.body = wamid_or_body
  order by m.wamid = wamid_or_body desc, m.created_at limit 1
$$;
create or replace function tests.message(wamid_or_body text)
returns public.whatsapp_messages language sql stable security definer set search_path = '' as $$
  select m from public.whatsapp_messages m where m.id = tests.message_id(wamid_or_body)
$$;
create or replace function tests.conversation(identifier text, phone text)
returns public.whatsapp_conversations language sql stable security definer set search_path = '' as $$
  select c from public.whatsapp_conversations c
  where c.landlord_id = tests.get_supabase_uid(identifier) and c.tenant_phone = phone
$$;
create or replace function tests.conversation_id(identifier text, phone text)
returns uuid language sql stable security definer set search_path = '' as $$
  select (tests.conversation(identifier, phone)).id
$$;
create or replace function tests.routing_metadata(message_id uuid)
returns jsonb language sql stable security definer set search_path = '' as $$
  select d.routing_metadata from private.whatsapp_message_details d where d.message_id = routing_metadata.message_id
$$;
create or replace function tests.raw(message_id uuid)
returns jsonb language sql stable security definer set search_path = '' as $$
  select d.raw from private.whatsapp_message_details d where d.message_id = raw.message_id
$$;
-- The true number of held messages, to compare with what support is told.
create or replace function tests.held_count()
returns integer language sql stable security definer set search_path = '' as $$
  select count(*)::int from public.whatsapp_messages m where m.is_held
$$;
-- ZenRent's own replies (courtesy, clarification, consent acknowledgements) to a phone.
create or replace function tests.system_replies(phone text, reason text)
returns integer language sql stable security definer set search_path = '' as $$
  select count(*)::int from public.whatsapp_messages m
  where m.tenant_phone = phone and m.direction = 'outgoing' and m.routing_status = 'system'
    and tests.routing_metadata(m.id) ->> 'reason' = reason
$$;
create or replace function tests.system_reply_id(phone text)
returns uuid language sql stable security definer set search_path = '' as $$
  select m.id from public.whatsapp_messages m
  where m.tenant_phone = phone and m.direction = 'outgoing' and m.routing_status = 'system'
  order by m.created_at limit 1
$$;

-- World builders (as postgres) ------------------------------------------------------------------
-- A landlord with a profile.
create or replace function tests.add_landlord(identifier text, full_name text, opted_in boolean default true)
returns uuid language plpgsql security definer set search_path = '' as $$
declare
  id uuid := tests.create_supabase_user(identifier);
begin
  insert into public.user_profiles (id, full_name, email, whatsapp_enabled, whatsapp_opted_in_at)
  values (id, add_landlord.full_name, identifier || '@test.zenrent', opted_in, case when opted_in then now() end);
  return id;
end
$$;
-- A tenancy of a landlord: a property, a tenant with this phone (as typed) and an active lease.
create or replace function tests.add_tenancy(identifier text, tenant_name text, phone text, address text)
returns uuid language plpgsql security definer set search_path = '' as $$
declare
  landlord uuid := tests.get_supabase_uid(identifier);
  property uuid;
  tenant uuid;
begin
  insert into public.properties (user_id, address) values (landlord, add_tenancy.address) returning id into property;
  insert into public.tenants (user_id, name, phone) values (landlord, tenant_name, add_tenancy.phone) returning id into tenant;
  insert into public.leases (tenant_id, property_id, status, start_date) values (tenant, property, 'active', '2025-01-01');
  return tenant;
end
$$;
-- What the tenant said about a landlord, as if they had tapped it.
create or replace function tests.link(identifier text, phone text, state text default 'confirmed')
returns text language sql security definer set search_path = '' as $$
  select private.set_link_state(tests.get_supabase_uid(identifier), phone, state,
                                case when state = 'confirmed' then 'consent_yes' else 'consent_no' end)
$$;
create or replace function tests.link_state(identifier text, phone text)
returns text language sql stable security definer set search_path = '' as $$
  select private.link_state(tests.get_supabase_uid(identifier), phone)
$$;
-- A tap on an interactive reply button or list row (kind 'button_reply' / 'list_reply'), or on a
-- template's quick reply (kind 'button'), carrying the option id ZenRent sent.
create or replace function tests.tap(wamid text, sender text, token text, kind text default 'button_reply')
returns jsonb language sql set search_path = '' as $$
  select tests.route_as_webhook(case when kind = 'button'
    then jsonb_build_object('from', sender, 'id', wamid, 'timestamp', tests.unix_ts(), 'type', 'button',
                            'button', jsonb_build_object('payload', token, 'text', 'Yes'))
    else jsonb_build_object('from', sender, 'id', wamid, 'timestamp', tests.unix_ts(), 'type', 'interactive',
                            'interactive', jsonb_build_object('type', kind, kind, jsonb_build_object('id', token, 'title', 'x')))
    end)
$$;
-- ZenRent's newest queued message to a phone for a reason (consent_request, picker, picker_ack, ...).
create or replace function tests.zenrent_message(phone text, reason text)
returns public.whatsapp_messages language sql stable security definer set search_path = '' as $$
  select m from public.whatsapp_messages m
  where m.tenant_phone = phone and m.direction = 'outgoing' and m.routing_status = 'system'
    and tests.routing_metadata(m.id) ->> 'reason' = reason
  order by m.created_at desc, m.id desc limit 1
$$;
-- The option ids of an interactive or template message, in order.
create or replace function tests.option_tokens(m public.whatsapp_messages)
returns text[] language sql immutable set search_path = '' as $$
  select coalesce(
    (select array_agg(b -> 'reply' ->> 'id' order by o) from jsonb_array_elements(m.interactive -> 'action' -> 'buttons') with ordinality x (b, o)),
    (select array_agg(r ->> 'id' order by o) from jsonb_array_elements(m.interactive -> 'action' -> 'sections' -> 0 -> 'rows') with ordinality x (r, o)),
    (select array_agg(c -> 'parameters' -> 0 ->> 'payload' order by o) from jsonb_array_elements(m.template -> 'components') with ordinality x (c, o)
     where c ->> 'type' = 'button'))
$$;

-- A template as registered after approval in WhatsApp Manager (test bookkeeping; the RPC is 40-'s).
create or replace function tests.register_template(name text, language text, body_parameter_count integer)
returns void language sql security definer set search_path = '' as $$
  insert into private.whatsapp_templates (name, language, category, body_parameter_count)
  values (name, language, 'utility', body_parameter_count)
  on conflict on constraint whatsapp_templates_pkey do update set body_parameter_count = excluded.body_parameter_count
$$;

-- What was broadcast (realtime.send) on a topic, optionally of one event (rows of one transaction
-- share inserted_at: compare them as sets).
create or replace function tests.broadcasts(topic text, event text default null)
returns table (event text, payload jsonb, private boolean)
language sql stable security definer set search_path = '' as $$
  select m.event, m.payload, m.private from realtime.messages m
  where m.topic = broadcasts.topic and m.extension = 'broadcast' and (broadcasts.event is null or m.event = broadcasts.event)
  order by m.inserted_at, m.id
$$;

-- Executing the helpers needs nothing special; what they switch to is what is tested. Test
-- files add their own helpers to this schema, executable by every test actor too.
grant execute on all functions in schema tests to anon, authenticated, service_role;
alter default privileges in schema tests grant execute on functions to anon, authenticated, service_role;

select plan(17);

-- The platform bootstrap behaves like Supabase.
select has_role('anon');
select has_role('authenticated');
select has_role('service_role');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'), 'service_role bypasses RLS');
select has_function('auth', 'uid', '{}'::name[]);

-- The multi-WABA baseline exists.
select has_table('public', 'user_profiles', 'user_profiles exists');
select has_table('public', 'properties', 'properties exists');
select has_table('public', 'tenants', 'tenants exists');
select has_table('public', 'leases', 'leases exists');
select has_table('public', 'whatsapp_accounts', 'whatsapp_accounts exists');
select has_table('public', 'whatsapp_messages', 'whatsapp_messages exists');
select has_column('public', 'whatsapp_messages', 'wamid', 'messages have a wamid');

-- Every table in public has RLS enabled.
select is_empty(
  $$ select c.relname::text from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity $$,
  'every table in public has row level security enabled'
);

-- anon holds no privilege on any table in public or private.
select is_empty(
  $$ select format('%s.%s', table_schema, table_name) from information_schema.role_table_grants
     where grantee = 'anon' and table_schema in ('public', 'private') $$,
  'anon is granted nothing on public or private tables'
);

-- Nothing in private is granted to the API roles except USAGE on the schema.
select is_empty(
  $$ select format('%s.%s to %s', table_schema, table_name, grantee) from information_schema.role_table_grants
     where grantee in ('anon', 'authenticated') and table_schema = 'private' $$,
  'no private table is granted to anon or authenticated'
);

-- The helpers work: a user can be authenticated as, and auth.uid() follows.
select tests.create_supabase_user('helper_check');
select tests.authenticate_as('helper_check');
select is(auth.uid(), tests.get_supabase_uid('helper_check'), 'authenticate_as sets auth.uid()');
select is(current_user::text, 'authenticated', 'authenticate_as switches to the authenticated role');
reset role;

select * from finish();
-- Commit: the helpers stay for the files that follow (the test user is removed below).
delete from auth.users where raw_user_meta_data ->> 'test_identifier' = 'helper_check';
commit;
