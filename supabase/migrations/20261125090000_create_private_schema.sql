-- Why: everything internal (routing table, trigger functions, RLS helpers, queues, settings)
-- lives in `private`, a schema the Data API does not expose (config.toml [api].schemas).
-- API roles get USAGE only so that RLS policies may call the few helpers granted to them;
-- no table in `private` is ever granted to anon or authenticated.

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Functions created in private are not executable by anyone unless granted one by one.
alter default privileges in schema private revoke execute on functions from public;

create or replace function private.trg_set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

comment on function private.trg_set_updated_at() is
  'Shared trigger: keeps updated_at at the time of the last update.';
