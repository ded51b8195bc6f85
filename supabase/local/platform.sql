-- The Supabase platform, recreated for the local cluster only.
--
-- On hosted Supabase all of this already exists; it is NOT a migration and is never pushed.
-- It mirrors what supabase/postgres (migrations/db: init-scripts and migrations) and
-- supabase/auth (GoTrue's migrations) leave in a hosted project, as far as this project relies
-- on it:
--   * supabase_admin is the cluster's bootstrap superuser (scripts/db runs initdb with it) and
--     runs this file; `postgres` is demoted exactly as hosted demotes it (NOSUPERUSER CREATEDB
--     CREATEROLE REPLICATION BYPASSRLS), owns the database, and is who pushes migrations and
--     loads the seed;
--   * the API roles anon / authenticated / service_role (INHERIT, as hosted alters them) and the
--     login role authenticator (NOINHERIT) with hosted's role settings: statement_timeout 3s for
--     anon and 8s for authenticated, statement_timeout and lock_timeout 8s for authenticator;
--   * the auth schema: auth.users with GoTrue's columns, owned by supabase_auth_admin, RLS on,
--     nothing granted to the API roles, ALL granted to postgres; auth.uid() / role() / email() /
--     jwt() as GoTrue defines them today;
--   * the extensions schema (pgcrypto, uuid-ossp; pgtap and plpgsql_check for the tests and
--     `supabase db lint`, which hosted lets postgres enable itself), the supabase_realtime
--     publication (owned by postgres, as on hosted), Supabase's default privileges on public.
-- Not reproduced: pg-safeupdate, which hosted preloads for authenticator
-- (session_preload_libraries = 'supautils, safeupdate'), is not packaged here, so UPDATE or
-- DELETE without WHERE would not fail locally; tests/test_sql_safety.py lints every function for it.
--
-- Idempotent: roles are cluster-wide and survive `scripts/db reset`; running this file again on
-- a database that has it changes nothing.

do $$
begin
  if current_user <> 'supabase_admin' then
    raise exception using errcode = '42501',
      message = format('supabase/local/platform.sql runs as supabase_admin, not %s', current_user),
      hint = 'scripts/db applies it with ZR_DB_ADMIN_URL; scratch databases must do the same';
  end if;
end
$$;

-- roles (cluster-wide) ------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres login password 'postgres';
  end if;
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit nocreaterole noreplication;
  end if;
end
$$;

-- The attributes hosted ends up with, re-asserted on every run (also demotes a postgres that an
-- older local set-up made superuser).
alter role postgres nosuperuser createdb createrole login replication bypassrls;
alter role anon nologin inherit;
alter role authenticated nologin inherit;
alter role service_role nologin inherit bypassrls;
alter role authenticator login noinherit;
alter role supabase_auth_admin login noinherit nocreaterole noreplication;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;
-- Hosted's supautils lets postgres set a few superuser-only settings
-- (supautils.privileged_role_allowed_configs); the ones PostgreSQL itself has, granted the
-- PostgreSQL 15 way. The seed-style bulk loads in bench/sql use session_replication_role.
grant set on parameter session_replication_role, track_io_timing to postgres;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
alter role supabase_auth_admin set search_path = auth;
alter role supabase_admin set search_path = "$user", public, auth, extensions;
alter role postgres set search_path = "$user", public, extensions;

-- the database --------------------------------------------------------------------------------
-- Hosted: created by the bootstrap superuser, then handed to postgres. Same search_path for
-- every role that has none of its own: extensions are reachable without qualification.
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
end
$$;

-- extensions ----------------------------------------------------------------------------------
create schema if not exists extensions;
alter schema extensions owner to postgres;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema extensions
  grant all on tables to postgres with grant option;
alter default privileges for role supabase_admin in schema extensions
  grant all on routines to postgres with grant option;
alter default privileges for role supabase_admin in schema extensions
  grant all on sequences to postgres with grant option;

create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgtap with schema extensions;
create extension if not exists plpgsql_check with schema extensions;

-- auth ----------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;
grant all on schema auth to supabase_auth_admin;
revoke create on schema auth from postgres;
alter default privileges for role supabase_auth_admin in schema auth grant all on tables to postgres;
alter default privileges for role supabase_auth_admin in schema auth grant all on sequences to postgres;
alter default privileges for role supabase_auth_admin in schema auth grant all on routines to postgres;

-- The columns GoTrue's migrations leave today, in their order.
create table if not exists auth.users (
  instance_id uuid,
  id uuid not null unique,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false,
  constraint users_pkey primary key (id)
);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower(email));
create index if not exists users_instance_id_idx on auth.users (instance_id);
create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
create unique index if not exists confirmation_token_idx on auth.users (confirmation_token)
  where confirmation_token !~ '^[0-9 ]*$';
create unique index if not exists recovery_token_idx on auth.users (recovery_token)
  where recovery_token !~ '^[0-9 ]*$';
create unique index if not exists email_change_token_current_idx on auth.users (email_change_token_current)
  where email_change_token_current !~ '^[0-9 ]*$';
create unique index if not exists email_change_token_new_idx on auth.users (email_change_token_new)
  where email_change_token_new !~ '^[0-9 ]*$';
create unique index if not exists reauthentication_token_idx on auth.users (reauthentication_token)
  where reauthentication_token !~ '^[0-9 ]*$';
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);
comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
comment on column auth.users.is_sso_user is
  'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';

alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
-- postgres may read and write it (the seed and the tests create users), as hosted allows;
-- the API roles get nothing: only GoTrue (as supabase_auth_admin) and definer functions see it.
grant all on auth.users to postgres;
grant select on auth.users to postgres with grant option;
revoke all on auth.users from anon, authenticated, service_role;

-- The helpers as GoTrue defines them today (uid/role/email deprecated in favour of jwt()).
create or replace function auth.uid()
returns uuid
language sql stable
as $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role()
returns text
language sql stable
as $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email()
returns text
language sql stable
as $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt()
returns jsonb
language sql stable
as $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
-- EXECUTE stays with PUBLIC (PostgreSQL's default), as on hosted.
grant all on function auth.uid(), auth.role(), auth.email(), auth.jwt() to postgres;

-- public: Supabase's default privileges -------------------------------------------------------
-- Anything postgres (or supabase_admin) creates in public is granted to the API roles, so a
-- table without RLS really is exposed (and the advisors flag it).
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;

-- realtime ------------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;
