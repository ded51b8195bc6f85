-- TEMPORARY, LOCAL ONLY: DELETE THIS FILE AT MERGE (issue 15, Python worktree wt-py15).
-- Why: the webhook shim and the support console call the dead-letter RPCs that the SQL half of
-- issue 15 creates in main. This file creates exactly that contract, minimally, so the Python
-- tests can run before it lands. The real migration replaces it (and also adds
-- dead_letters_last_24h to whatsapp_service_status(), which this file deliberately does not).

create table private.webhook_dead_letters (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  source text not null check (source in ('body', 'entry', 'change', 'message', 'status', 'error')),
  phone_number_id text,
  error_code text,
  error_message text,
  item jsonb,
  body text
);
alter table private.webhook_dead_letters enable row level security;
revoke all on private.webhook_dead_letters from public, anon, authenticated, service_role;

create function public.dead_letter_webhook(body text, error text)
returns bigint
language sql
security definer -- writes private.webhook_dead_letters, which no API role may; service_role only
set search_path = ''
as $$
  insert into private.webhook_dead_letters (source, error_code, error_message, body)
  values ('body', '22023', dead_letter_webhook.error, dead_letter_webhook.body)
  returning id;
$$;
comment on function public.dead_letter_webhook(text, text) is
  'TEMPORARY contract stand-in: keep a signed webhook body the shim cannot use.';
revoke execute on function public.dead_letter_webhook(text, text) from public, anon, authenticated;
grant execute on function public.dead_letter_webhook(text, text) to service_role;

create function public.list_dead_letters(after_id bigint default null, page_size integer default 50)
returns table (id bigint, received_at timestamptz, source text, phone_number_id text, error_code text,
               error_message text, item jsonb, body text)
language plpgsql
stable
security definer -- reads private.webhook_dead_letters, which no API role may; support only
set search_path = ''
as $$
begin
  perform private.require_support();
  return query
  select d.id, d.received_at, d.source, d.phone_number_id, d.error_code, d.error_message, d.item, d.body
  from private.webhook_dead_letters d
  where list_dead_letters.after_id is null or d.id < list_dead_letters.after_id
  order by d.id desc
  limit least(greatest(coalesce(list_dead_letters.page_size, 50), 1), 200);
end
$$;
comment on function public.list_dead_letters(bigint, integer) is
  'TEMPORARY contract stand-in: dead letters for support, newest first, keyset on id.';
revoke execute on function public.list_dead_letters(bigint, integer) from public, anon, authenticated;
grant execute on function public.list_dead_letters(bigint, integer) to authenticated;
