-- Why: a tenant's phone says STOP or START for every landlord at once (the tenant talks to one
-- number), and ZenRent's own courtesy and clarification replies go out at most once a day per
-- phone. Both are tracked per phone here; the router writes it, the senders read it.

create table private.phone_preferences (
  phone text primary key check (phone ~ '^[1-9][0-9]{7,14}$'),
  opted_out boolean not null default false,
  opted_out_at timestamptz,
  opted_in_at timestamptz,
  last_courtesy_reply_at timestamptz,
  last_clarification_reply_at timestamptz,
  updated_at timestamptz not null default now()
);
comment on table private.phone_preferences is 'Per tenant phone: STOP/START consent and when ZenRent last replied on its own.';
alter table private.phone_preferences enable row level security;
revoke all on private.phone_preferences from public, anon, authenticated, service_role;

create function private.is_opted_out(phone text)
returns boolean
language sql
stable
security definer -- answers one yes/no question about a private table
set search_path = ''
as $$
  select coalesce((select p.opted_out from private.phone_preferences p where p.phone = is_opted_out.phone), false)
$$;
comment on function private.is_opted_out(text) is 'The phone sent STOP and has not sent START since.';
grant execute on function private.is_opted_out(text) to service_role;
