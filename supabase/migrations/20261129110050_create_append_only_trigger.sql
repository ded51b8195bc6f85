-- Why: some tables are records that must never change once written: the archive of what the
-- history migration moved, and the support audit log. One trigger function refuses UPDATE,
-- DELETE and TRUNCATE on all of them, for every role including the owner; the trigger's
-- argument is the hint that says why.

create function private.trg_append_only()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  raise exception using errcode = '42501', detail = 'append_only', message = format('%s.%s is append-only', tg_table_schema, tg_table_name),
    hint = coalesce(tg_argv[0], 'its rows are never changed or removed');
end
$$;
comment on function private.trg_append_only() is 'Trigger: refuses UPDATE, DELETE and TRUNCATE (42501); argument: the hint.';
