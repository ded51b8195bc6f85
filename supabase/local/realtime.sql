-- Supabase Realtime's schema, recreated for the local cluster only.
--
-- On hosted Supabase the Realtime server creates and migrates this schema itself (its tenant
-- migrations, lib/realtime/tenants/repo/migrations in supabase/realtime, exported as
-- priv/repo/tenant_schema/realtime); it is NOT a migration of this project and is never pushed.
-- scripts/db applies it right after platform.sql, as supabase_admin (the bench harness and
-- tests/test_history_migration.py do the same), so that migrations may write RLS policies on
-- realtime.messages and triggers may call realtime.send() exactly as on hosted.
--
-- What it mirrors, as Realtime leaves it today:
--   * role supabase_realtime_admin (NOINHERIT NOLOGIN NOREPLICATION) owns the schema's objects;
--     it is granted to postgres, as Realtime does unless supautils.policy_grants names
--     realtime.messages (hosted then lets postgres write policies through supautils instead;
--     supautils is not packaged here, so membership is how postgres gets to create policies);
--   * schema realtime: usage for postgres and the API roles, create for supabase_realtime_admin;
--   * realtime.messages (topic, extension, payload, event, private, updated_at, inserted_at, id,
--     binary_payload) PARTITION BY RANGE (inserted_at), primary key (id, inserted_at), RLS on,
--     the replay index, INSERT/SELECT/UPDATE granted to anon, authenticated and service_role
--     (RLS decides: without a policy nobody but a BYPASSRLS role reads or writes a row);
--   * realtime.topic(), realtime.send(payload, event, topic, private default true) and
--     realtime.broadcast_changes(...) with Realtime's signatures and behaviour (send swallows
--     its own errors as a WARNING, so a trigger that broadcasts never fails the write).
-- Local differences, each on purpose:
--   * one DEFAULT partition instead of Realtime's daily partitions (Realtime creates
--     messages_YYYY_MM_DD ahead of time and drops old ones; nothing here needs retention);
--   * a trigger that pg_notify()s each new row's id on channel realtime_local_messages, for the
--     local Realtime stand-in (app/local/realtime.py). The real server hears new rows through
--     logical replication (a publication and slot on realtime.messages), not NOTIFY; the bench
--     harness disables this trigger so benchmarks do not pay NOTIFY's commit serialisation;
--   * not reproduced: realtime.subscription and the Postgres Changes functions (this project
--     broadcasts, it does not stream table changes to clients), realtime.send_binary (V1
--     websocket clients such as supabase-py 2.34 cannot receive binary payloads anyway),
--     realtime.schema_migrations.
--
-- Idempotent, like platform.sql: running it again on a database that has it changes nothing.

do $$
begin
  if current_user <> 'supabase_admin' then
    raise exception using errcode = '42501',
      message = format('supabase/local/realtime.sql runs as supabase_admin, not %s', current_user),
      hint = 'scripts/db applies it with ZR_DB_ADMIN_URL right after platform.sql';
  end if;
end
$$;

-- the role (cluster-wide) ---------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin noinherit nologin noreplication;
  end if;
end
$$;
grant supabase_realtime_admin to postgres;

-- the schema ------------------------------------------------------------------------------------
create schema if not exists realtime authorization supabase_admin;
grant usage on schema realtime to postgres, anon, authenticated, service_role;
grant create, usage on schema realtime to supabase_realtime_admin with grant option;

-- realtime.messages ----------------------------------------------------------------------------
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  constraint messages_pkey primary key (id, inserted_at),
  constraint messages_payload_exclusive check (payload is null or binary_payload is null)
) partition by range (inserted_at);

create table if not exists realtime.messages_default partition of realtime.messages default;

-- Realtime's replay index (private broadcasts by recency and topic).
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;

alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
alter table realtime.messages_default owner to supabase_realtime_admin;
grant insert, select, update on realtime.messages to anon, authenticated, service_role;

-- realtime.topic(): the topic being authorized, for RLS policies --------------------------------
-- Realtime sets realtime.topic (transaction-locally) before it checks a join, and send() sets it
-- before it inserts, so policies can compare against the channel's topic.
create or replace function realtime.topic()
returns text
language sql
stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;
alter function realtime.topic() owner to supabase_realtime_admin;

-- realtime.send(): Broadcast from the database -------------------------------------------------
-- Inserts one broadcast row; Realtime delivers it to the clients joined to `topic` (private
-- channels when private is true). The payload gets an "id" (the row's id) unless it has one.
-- Any error becomes a WARNING (WarnSendingBroadcastMessage), never an exception: a trigger that
-- broadcasts must not fail the write it reports. Security invoker, as Realtime defines it: the
-- caller needs INSERT on realtime.messages and must pass its RLS (or bypass it).
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    final_payload := case when send.payload ? 'id' then send.payload
                          else jsonb_set(send.payload, '{id}', to_jsonb(generated_id)) end;
    execute format('set local realtime.topic to %L', send.topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, send.event, send.topic, send.private, 'broadcast');
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;

-- realtime.broadcast_changes(): a row change as a broadcast, from a row-level trigger -----------
-- Payload {old_record, record, operation, table, schema}; sent private (send's default).
create or replace function realtime.broadcast_changes(
  topic_name text,
  event_name text,
  operation text,
  table_name text,
  table_schema text,
  new record,
  old record,
  level text default 'ROW'
)
returns void
language plpgsql
as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation in ('INSERT', 'UPDATE', 'DELETE') then
    row_data := jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                                   'table', table_name, 'schema', table_schema);
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
exception
  when others then
    raise exception 'Failed to process the row: %', sqlerrm;
end;
$$;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  owner to supabase_realtime_admin;

-- LOCAL ONLY: how the stand-in hears new rows ----------------------------------------------------
-- The real Realtime server reads inserts into realtime.messages from the WAL (logical
-- replication). The local stand-in (app/local/realtime.py) LISTENs instead: each committed row
-- NOTIFYs its id (a uuid, far below NOTIFY's 8000-byte limit) on channel realtime_local_messages,
-- in commit order; rolled-back rows (Realtime's own authorization probes) never notify.
create or replace function realtime.local_notify_new_message()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('realtime_local_messages', new.id::text);
  return null;
end;
$$;
alter function realtime.local_notify_new_message() owner to supabase_realtime_admin;
comment on function realtime.local_notify_new_message() is
  'LOCAL ONLY (supabase/local/realtime.sql): NOTIFY the local Realtime stand-in of a new message. Hosted Realtime uses logical replication.';

create or replace trigger messages_local_notify after insert on realtime.messages
  for each row execute function realtime.local_notify_new_message();
