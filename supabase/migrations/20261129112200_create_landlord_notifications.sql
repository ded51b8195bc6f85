-- Why: a landlord with notifications on hears about a new tenant message at once. The trigger
-- that files the message also raises pg_notify on channel 'zenrent_whatsapp_inbound' (payload:
-- {"landlord_id", "conversation_id", "message_id"}) for live listeners, and writes a row to
-- private.landlord_notifications that a notifier (push, e-mail) claims with
-- public.claim_landlord_notifications() so nothing is missed while no listener runs.
-- private.whatsapp_settings.notify_listeners switches the pg_notify off (it serialises commits).
-- No foreign keys to the message and conversation: a notifier skips notifications whose message
-- is gone, and two parent-row locks and index inserts per routed message are saved.

create table private.landlord_notifications (
  id bigint generated always as identity primary key,
  landlord_id uuid not null references public.user_profiles (id) on delete cascade,
  conversation_id uuid not null,
  message_id uuid not null,
  created_at timestamptz not null default now(),
  claimed_at timestamptz
);
comment on table private.landlord_notifications is 'New inbound messages to notify landlords of; claimed by the notifier.';
create index landlord_notifications_unclaimed_idx on private.landlord_notifications (id) where claimed_at is null;
create index landlord_notifications_landlord_id_idx on private.landlord_notifications (landlord_id);
alter table private.landlord_notifications enable row level security;
revoke all on private.landlord_notifications from public, anon, authenticated, service_role;

create function private.trg_notify_landlord()
returns trigger
language plpgsql
security definer -- writes the private notification queue
set search_path = ''
as $$
begin
  if (select up.whatsapp_notifications_enabled from public.user_profiles up where up.id = new.landlord_id) then
    insert into private.landlord_notifications (landlord_id, conversation_id, message_id)
    values (new.landlord_id, new.conversation_id, new.id);
    -- NOTIFY takes a database-wide lock from pre-commit until the commit is flushed: every
    -- notifying transaction commits alone (docs/benchmarks.md). On by default; a deployment
    -- that relies on the queue and Realtime only turns it off with configure_whatsapp.
    if (select s.notify_listeners from private.whatsapp_settings s) then
      perform pg_notify('zenrent_whatsapp_inbound', json_build_object(
        'landlord_id', new.landlord_id, 'conversation_id', new.conversation_id, 'message_id', new.id)::text);
    end if;
  end if;
  return null;
end
$$;

comment on function private.trg_notify_landlord() is
  'Trigger: queue a notification (and pg_notify) for a landlord with notifications on when a tenant message is delivered.';

create trigger whatsapp_messages_notify_landlord after insert on public.whatsapp_messages
  for each row when (new.routing_status = 'delivered' and new.is_from_tenant and new.type <> 'reaction')
  execute function private.trg_notify_landlord();
-- Delivered after the fact (support assignment) notifies like a routed message; history never does.
create trigger whatsapp_messages_notify_landlord_on_assign after update of routing_status on public.whatsapp_messages
  for each row when (old.routing_status is distinct from 'delivered' and new.routing_status = 'delivered'
                     and new.is_from_tenant and new.type <> 'reaction' and new.user_id is null)
  execute function private.trg_notify_landlord();

create function public.claim_landlord_notifications(batch_size integer default 100)
returns table (id bigint, landlord_id uuid, conversation_id uuid, message_id uuid, created_at timestamptz)
language plpgsql
security definer -- reads and marks the private notification queue; service_role only
set search_path = ''
as $$
begin
  if batch_size is null or batch_size not between 1 and 1000 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'batch_size must be between 1 and 1000', hint = 'e.g. 100';
  end if;
  return query
  with c as (
    select n.id from private.landlord_notifications n
    where n.claimed_at is null order by n.id limit batch_size for update skip locked
  )
  update private.landlord_notifications n set claimed_at = now() from c where n.id = c.id
  returning n.id, n.landlord_id, n.conversation_id, n.message_id, n.created_at;
end
$$;
comment on function public.claim_landlord_notifications(integer) is
  'Service role: hand out unclaimed landlord notifications (skip locked: several notifiers never get the same one).';
revoke execute on function public.claim_landlord_notifications(integer) from public, anon, authenticated;
grant execute on function public.claim_landlord_notifications(integer) to service_role;
