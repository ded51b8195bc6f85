-- Supabase Storage's schema, recreated for the local cluster only.
--
-- On hosted Supabase the Storage server creates and migrates this schema itself (its tenant
-- migrations, migrations/tenant in supabase/storage, run as supabase_storage_admin); it is NOT a
-- migration of this project and is never pushed. scripts/db applies it right after
-- platform.sql, as supabase_admin (the bench harness and tests/test_history_migration.py do the
-- same), so that migrations may create buckets and write RLS policies on storage.objects exactly
-- as on hosted, and so that the local Storage stand-in (app/local/storage.py) has the tables the
-- real server reads and writes.
--
-- What it mirrors, as Storage's migrations leave it today:
--   * role supabase_storage_admin (LOGIN NOINHERIT CREATEROLE NOREPLICATION, search_path storage)
--     owns the tables and functions; schema storage belongs to supabase_admin, with usage for
--     postgres (with grant option) and the API roles and all privileges for
--     supabase_storage_admin (supabase/postgres: init script 00000000000002 and 20250709);
--   * storage.buckets (id, name, owner, created_at, updated_at, public, avif_autodetection,
--     file_size_limit in bytes, allowed_mime_types, owner_id), bucket names at most 100
--     characters (0002, 0008, 0012-0014, 0018, 0037);
--   * storage.objects (id uuid, bucket_id, name, owner, created_at, updated_at,
--     last_accessed_at, metadata jsonb, path_tokens generated from name, version, owner_id,
--     user_metadata), unique (bucket_id, name), updated_at kept by a trigger (0002, 0003, 0011,
--     0016-0019, 0025);
--   * RLS enabled on both tables, and ALL on both granted to anon, authenticated and
--     service_role (0046: RLS decides) and to postgres with grant option (0049);
--   * storage.foldername(name), storage.filename(name), storage.extension(name) (immutable, as
--     0036/0060/0061 leave them), storage.operation() (0024) and the operation helpers
--     allow_only_operation / allow_any_operation (0058): the functions policies use;
--   * direct DELETEs refused unless storage.allow_delete_query is 'true', which the Storage
--     server sets in every request's transaction (0055).
-- Local differences, each on purpose:
--   * hosted lets postgres write policies on storage.objects and storage.buckets through
--     supautils.policy_grants without being a member of supabase_storage_admin (supabase/postgres
--     revoked that membership in 20250421); supautils is not packaged here, so postgres is made
--     a member, which also lets it ALTER or DROP the tables (hosted would refuse; no migration
--     of this project may rely on that);
--   * the Storage server logs in as supabase_storage_admin and switches to the caller's role
--     with set_config('role', ...); the local stand-in does the same, so supabase_storage_admin
--     is a member of anon, authenticated and service_role and has the local password postgres;
--   * not reproduced: storage.migrations, the S3 multipart, analytics, vector and iceberg
--     tables, the search/list functions, object versioning columns, buckets.type: nothing here
--     uses them.
--
-- Idempotent, like platform.sql: running it again on a database that has it changes nothing.

do $$
begin
  if current_user <> 'supabase_admin' then
    raise exception using errcode = '42501',
      message = format('supabase/local/storage.sql runs as supabase_admin, not %s', current_user),
      hint = 'scripts/db applies it with ZR_DB_ADMIN_URL right after platform.sql';
  end if;
end
$$;

-- the role (cluster-wide) ---------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin login noinherit createrole noreplication password 'postgres';
  end if;
end
$$;
alter role supabase_storage_admin login noinherit createrole noreplication;
alter role supabase_storage_admin set search_path = storage;
-- LOCAL: the stand-in becomes the caller's API role, as the Storage server does.
grant anon, authenticated, service_role to supabase_storage_admin;
-- LOCAL: what supautils.policy_grants gives postgres on hosted (see the header).
grant supabase_storage_admin to postgres;

-- the schema ----------------------------------------------------------------------------------
create schema if not exists storage authorization supabase_admin;
grant usage on schema storage to postgres with grant option;
grant usage on schema storage to anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin with grant option;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on sequences to postgres, anon, authenticated, service_role;

-- Everything below is created by supabase_storage_admin, as the Storage server runs its own
-- migrations: it owns what it creates.
set role supabase_storage_admin;

-- storage.buckets -------------------------------------------------------------------------------
create table if not exists storage.buckets (
  id text not null primary key,
  name text not null,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text
);
create unique index if not exists bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';
alter table storage.buckets enable row level security;

-- storage.objects -------------------------------------------------------------------------------
create table if not exists storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text constraint "objects_bucketId_fkey" references storage.buckets (id),
  name text,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  owner_id text,
  user_metadata jsonb
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';
alter table storage.objects enable row level security;

grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;

-- path helpers for policies -------------------------------------------------------------------
-- 'a/b/c.jpg': foldername {a,b}, filename 'c.jpg', extension 'jpg' (a name without a dot is its
-- own extension, as in Storage).
create or replace function storage.foldername(name text)
returns text[]
language plpgsql
immutable
as $$
declare
  parts text[] := string_to_array(foldername.name, '/');
begin
  return parts[1 : array_length(parts, 1) - 1];
end;
$$;

create or replace function storage.filename(name text)
returns text
language plpgsql
immutable
as $$
declare
  parts text[] := string_to_array(filename.name, '/');
begin
  return parts[array_length(parts, 1)];
end;
$$;

create or replace function storage.extension(name text)
returns text
language plpgsql
immutable
as $$
declare
  parts text[] := string_to_array(extension.name, '/');
begin
  return reverse(split_part(reverse(parts[array_length(parts, 1)]), '.', 1));
end;
$$;

-- The operation of the request being authorized ('storage.object.upload', ...), which the
-- Storage server sets transaction-locally before it touches storage.objects.
create or replace function storage.operation()
returns text
language plpgsql
stable
as $$
begin
  return current_setting('storage.operation', true);
end;
$$;

-- allow_only_operation('object.upload') / allow_any_operation('{object.sign,...}'): the
-- 'storage.' prefix is optional on both sides; an empty or null expectation never matches.
create or replace function storage.allow_only_operation(expected_operation text)
returns boolean
language sql
stable
as $$
  select coalesce(
    nullif(allow_only_operation.expected_operation, '') is not null
      and regexp_replace(storage.operation(), '^storage\.', '')
        = regexp_replace(allow_only_operation.expected_operation, '^storage\.', ''),
    false)
$$;

create or replace function storage.allow_any_operation(expected_operations text[])
returns boolean
language sql
stable
as $$
  select exists (
    select from unnest(allow_any_operation.expected_operations) as e(op)
    where nullif(e.op, '') is not null
      and regexp_replace(storage.operation(), '^storage\.', '') = regexp_replace(e.op, '^storage\.', '')
  )
$$;

-- triggers --------------------------------------------------------------------------------------
create or replace function storage.update_updated_at_column()
returns trigger
language plpgsql
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
create or replace trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

create or replace function storage.enforce_bucket_name_length()
returns trigger
language plpgsql
as $$
begin
  if length(new.name) > 100 then
    raise exception 'bucket name "%" is too long (% characters). Max is 100.', new.name, length(new.name);
  end if;
  return new;
end;
$$;
create or replace trigger enforce_bucket_name_length_trigger before insert or update of name on storage.buckets
  for each row execute function storage.enforce_bucket_name_length();

-- Rows of storage.objects stand for files: deleting them without the Storage API would orphan
-- the files, so a DELETE is refused unless the Storage server's request scope allows it.
create or replace function storage.protect_delete()
returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
    raise exception using errcode = '42501',
      message = 'Direct deletion from storage tables is not allowed. Use the Storage API instead.',
      hint = 'This prevents accidental data loss from orphaned objects.';
  end if;
  return null;
end;
$$;
create or replace trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
create or replace trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();

reset role;
