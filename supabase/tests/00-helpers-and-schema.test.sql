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
