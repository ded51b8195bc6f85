-- Why: messages the router cannot deliver (ambiguous, unknown_sender, landlord_disabled) are
-- stored but visible to no landlord. ZenRent support staff — users whose JWT carries
-- app_metadata.role = 'support' (server-set; users cannot change app_metadata) — see those held
-- messages and nothing else, and resolve them through three RPCs: assign (delivering exactly as
-- the router would, optionally pinning the phone), dismiss (spam, wrong number; kept and marked).
-- Every action lands in an append-only audit log.

create or replace function private.is_support()
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce((select auth.jwt()) -> 'app_metadata' ->> 'role', '') = 'support'
$$;
comment on function private.is_support() is 'The caller''s JWT says app_metadata.role = support.';
grant execute on function private.is_support() to authenticated;

alter table public.whatsapp_messages drop constraint whatsapp_messages_routing_status_check;
alter table public.whatsapp_messages add constraint whatsapp_messages_routing_status_check check (routing_status in
  ('delivered', 'ambiguous', 'unknown_sender', 'landlord_disabled', 'blocked', 'outbound', 'system', 'dismissed'));

-- Landlords read their own messages; support reads held inbound messages. One policy per command and role.
drop policy "landlords can read their messages" on public.whatsapp_messages;
create policy "landlords read their messages, support reads held messages" on public.whatsapp_messages
  for select to authenticated
  using (
    landlord_id = (select auth.uid())
    or user_id = (select auth.uid())
    or ((select private.is_support()) and landlord_id is null and direction = 'incoming'
        and routing_status in ('ambiguous', 'unknown_sender', 'landlord_disabled'))
  );

-- A message delivered after the fact (support assignment) counts and notifies like a routed one.
-- Only central-number messages (raw is set): backfilled multi-WABA history never bumps or notifies.
create trigger whatsapp_messages_bump_conversation_on_assign after update of conversation_id on public.whatsapp_messages
  for each row when (old.conversation_id is null and new.conversation_id is not null and new.raw is not null)
  execute function private.trg_bump_conversation();
create trigger whatsapp_messages_notify_landlord_on_assign after update of routing_status on public.whatsapp_messages
  for each row when (old.routing_status is distinct from 'delivered' and new.routing_status = 'delivered'
                     and new.is_from_tenant and new.type <> 'reaction' and new.raw is not null)
  execute function private.trg_notify_landlord();

-- Audit: append-only; no API role has any privilege on it, and rows are never changed.
create table private.support_audit_log (
  id bigint generated always as identity primary key,
  actor_id uuid not null,
  actor_email text,
  action text not null check (action in ('assign', 'assign_and_pin', 'dismiss')),
  message_id uuid not null,
  landlord_id uuid,
  pin_days integer,
  reason text,
  details jsonb not null default '{}',
  created_at timestamptz not null default now()
);
comment on table private.support_audit_log is 'Who did what to which held message, when and why. Append-only.';
create index support_audit_log_message_id_idx on private.support_audit_log (message_id);
alter table private.support_audit_log enable row level security;
revoke all on private.support_audit_log from public, anon, authenticated, service_role;

-- Every role hits this trigger, the owner included; only a migration could drop it.
create trigger support_audit_log_append_only before update or delete on private.support_audit_log
  for each row execute function private.trg_append_only('the audit log is the record of what support did; its rows are never changed or removed');
create trigger support_audit_log_no_truncate before truncate on private.support_audit_log
  for each statement execute function private.trg_append_only('the audit log is the record of what support did; its rows are never changed or removed');

create or replace function private.require_support()
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null or not private.is_support() then
    raise exception using errcode = '42501', message = 'support staff only',
      hint = 'sign in with a user whose app_metadata.role is support';
  end if;
  return (select auth.uid());
end
$$;
comment on function private.require_support() is 'The caller''s uid if they are support staff; 42501 otherwise.';
revoke execute on function private.require_support() from public;

create or replace function private.held_message(message_id uuid)
returns public.whatsapp_messages
language plpgsql
security invoker
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
begin
  select * into m from public.whatsapp_messages x where x.id = held_message.message_id and x.direction = 'incoming' for update;
  -- Anything not held (delivered, dismissed, outbound) is not the support queue's: not found.
  if m.id is null or m.landlord_id is not null
     or m.routing_status not in ('ambiguous', 'unknown_sender', 'landlord_disabled') then
    raise exception using errcode = 'P0002', message = 'held message not found', hint = 'list them with list_held_messages()';
  end if;
  return m;
end
$$;
comment on function private.held_message(uuid) is 'A held inbound message, locked for update; P0002 when it is not (or no longer) held.';
revoke execute on function private.held_message(uuid) from public;

create or replace function public.list_held_messages(status text default null, after_id uuid default null, page_size integer default 50)
returns table (id uuid, wamid text, routing_status text, tenant_phone text, contact_name text, type text, body text,
               media_id text, media_mime_type text, media_caption text, sent_at timestamptz, created_at timestamptz,
               rule text, candidates jsonb)
language plpgsql
stable
security definer -- support has no column privilege on routing_metadata; this exposes only the candidates of held messages
set search_path = ''
as $$
declare
  cursor_at timestamptz;
begin
  perform private.require_support();
  if status is not null and status not in ('ambiguous', 'unknown_sender', 'landlord_disabled') then
    raise exception using errcode = '22023', message = format('invalid held status %L', status),
      hint = 'one of ambiguous, unknown_sender, landlord_disabled, or null for all';
  end if;
  if page_size is null or page_size not between 1 and 200 then
    raise exception using errcode = '22023', message = 'page_size must be between 1 and 200', hint = 'e.g. 50';
  end if;
  if after_id is not null then
    select m.created_at into cursor_at from public.whatsapp_messages m where m.id = after_id;
    if cursor_at is null then
      raise exception using errcode = 'P0002', message = 'after_id not found', hint = 'pass the id of the last row of the previous page';
    end if;
  end if;
  return query
  select m.id, m.wamid, m.routing_status, m.tenant_phone, m.contact_name, m.type, m.body,
         m.media_id, m.media_mime_type, m.media_caption, m.sent_at, m.created_at,
         m.routing_metadata ->> 'rule',
         coalesce((select jsonb_agg(jsonb_build_object(
                     'landlord_id', c ->> 'landlord_id', 'landlord_name', c ->> 'landlord_name',
                     'property_address', c ->> 'property_address', 'tenant_name', c ->> 'tenant_name',
                     'whatsapp_enabled', (c ->> 'enabled')::boolean))
                   from jsonb_array_elements(coalesce(m.routing_metadata -> 'candidates', '[]')) c), '[]')
  from public.whatsapp_messages m
  where m.landlord_id is null and m.direction = 'incoming'
    and m.routing_status in ('ambiguous', 'unknown_sender', 'landlord_disabled')
    and (list_held_messages.status is null or m.routing_status = list_held_messages.status)
    and (cursor_at is null or (m.created_at, m.id) < (cursor_at, after_id))
  order by m.created_at desc, m.id desc
  limit page_size;
end
$$;
comment on function public.list_held_messages(text, uuid, integer) is
  'Support: held messages newest first (keyset after_id), with the routing candidates (landlord, property, tenant).';

create or replace function public.assign_held_message(message_id uuid, landlord_id uuid, pin_days integer default 0, reason text default null)
returns jsonb
language plpgsql
security definer -- delivers into any landlord's conversation and writes the private audit log and pins; support only
set search_path = ''
as $$
declare
  actor uuid := private.require_support();
  m public.whatsapp_messages := private.held_message(message_id);
  candidate jsonb;
  route private.tenant_landlord_routing;
  conversation uuid;
  why text := nullif(btrim(reason), '');
begin
  if pin_days is null or pin_days not between 0 and 365 then
    raise exception using errcode = '22023', message = 'pin_days must be between 0 and 365', hint = '0 for no pin';
  end if;
  if not exists (select 1 from public.user_profiles up where up.id = assign_held_message.landlord_id) then
    raise exception using errcode = 'P0002', message = 'landlord not found', hint = 'pick one of the message''s candidates';
  end if;
  select c into candidate from jsonb_array_elements(coalesce(m.routing_metadata -> 'candidates', '[]')) c
    where (c ->> 'landlord_id')::uuid = assign_held_message.landlord_id;
  if candidate is null and why is null then
    raise exception using errcode = '22023', message = 'this landlord is not one of the message''s routing candidates',
      hint = 'give a reason to assign it to another landlord';
  end if;
  -- The router never files a message into a conversation its landlord has blocked; neither does support.
  if exists (select 1 from public.whatsapp_conversations cv
             where cv.landlord_id = assign_held_message.landlord_id and cv.tenant_phone = m.tenant_phone
               and cv.status = 'blocked') then
    raise exception using errcode = '55000', message = 'this landlord has blocked this phone',
      hint = 'the landlord must unblock the conversation first; or assign the message to another landlord';
  end if;
  select * into route from private.tenant_landlord_routing r
    where r.tenant_phone = m.tenant_phone and r.landlord_id = assign_held_message.landlord_id
    order by r.lease_start_date desc, r.lease_id limit 1;
  if pin_days > 0 and route.lease_id is null then
    raise exception using errcode = '22023', message = 'cannot pin: the landlord has no active lease for this phone',
      hint = 'pins only choose among current candidates; assign without a pin';
  end if;

  insert into public.whatsapp_conversations as cv (landlord_id, tenant_id, tenant_phone, property_id)
  values (assign_held_message.landlord_id, route.tenant_id, m.tenant_phone, route.property_id)
  on conflict on constraint whatsapp_conversations_landlord_phone_key do update
    set tenant_id = coalesce(excluded.tenant_id, cv.tenant_id), property_id = coalesce(excluded.property_id, cv.property_id)
  returning cv.id into conversation;

  update public.whatsapp_messages x set
    landlord_id = assign_held_message.landlord_id, tenant_id = route.tenant_id, property_id = route.property_id,
    conversation_id = conversation, routing_status = 'delivered',
    -- as the router links replies: only ever to the chosen landlord's own message
    reply_to_message_id = (select r.id from public.whatsapp_messages r
                            where r.wamid = m.reply_to_wamid and r.landlord_id = assign_held_message.landlord_id),
    routing_metadata = x.routing_metadata || jsonb_build_object('assigned_by', actor, 'assigned_at', now(),
                                                                'held_as', m.routing_status, 'reason', why)
  where x.id = m.id;

  if pin_days > 0 then
    insert into private.routing_pins as p (phone, landlord_id, expires_at, created_by, reason)
    values (m.tenant_phone, assign_held_message.landlord_id, now() + make_interval(days => pin_days), actor, why)
    on conflict (phone) do update set landlord_id = excluded.landlord_id, expires_at = excluded.expires_at,
      created_by = excluded.created_by, reason = excluded.reason, created_at = now();
  end if;

  insert into private.support_audit_log (actor_id, actor_email, action, message_id, landlord_id, pin_days, reason, details)
  values (actor, (select auth.jwt()) ->> 'email', case when pin_days > 0 then 'assign_and_pin' else 'assign' end,
          m.id, assign_held_message.landlord_id, pin_days, why,
          jsonb_build_object('held_as', m.routing_status, 'candidate', candidate is not null, 'conversation_id', conversation));

  return jsonb_build_object('message_id', m.id, 'conversation_id', conversation, 'landlord_id', assign_held_message.landlord_id,
                            'pinned_until', case when pin_days > 0 then now() + make_interval(days => pin_days) end);
end
$$;
comment on function public.assign_held_message(uuid, uuid, integer, text) is
  'Support: deliver a held message to a landlord (a recorded candidate, or any landlord with a reason), exactly as the '
  'router would (never into a conversation the landlord has blocked: 55000); pin_days > 0 also pins the phone to '
  'that landlord. Audited.';

create or replace function public.dismiss_held_message(message_id uuid, reason text)
returns jsonb
language plpgsql
security definer -- marks a held message and writes the private audit log; support only
set search_path = ''
as $$
declare
  actor uuid := private.require_support();
  m public.whatsapp_messages := private.held_message(message_id);
  why text := nullif(btrim(reason), '');
begin
  if why is null then
    raise exception using errcode = '22023', message = 'a reason is required to dismiss a message', hint = 'e.g. spam, wrong number';
  end if;
  update public.whatsapp_messages x set routing_status = 'dismissed',
    routing_metadata = x.routing_metadata || jsonb_build_object('dismissed_by', actor, 'dismissed_at', now(),
                                                                'held_as', m.routing_status, 'reason', why)
  where x.id = m.id;
  insert into private.support_audit_log (actor_id, actor_email, action, message_id, reason, details)
  values (actor, (select auth.jwt()) ->> 'email', 'dismiss', m.id, why, jsonb_build_object('held_as', m.routing_status));
  return jsonb_build_object('message_id', m.id, 'routing_status', 'dismissed');
end
$$;
comment on function public.dismiss_held_message(uuid, text) is 'Support: mark a held message as dismissed (spam, wrong number). Kept and audited.';

revoke execute on function public.list_held_messages(text, uuid, integer), public.assign_held_message(uuid, uuid, integer, text),
  public.dismiss_held_message(uuid, text) from public, anon, authenticated;
grant execute on function public.list_held_messages(text, uuid, integer), public.assign_held_message(uuid, uuid, integer, text),
  public.dismiss_held_message(uuid, text) to authenticated;

-- The operators' view of the service (support console status page and /metrics).
create or replace function public.whatsapp_service_status()
returns jsonb
language plpgsql
stable
security definer -- aggregates over every landlord's messages without exposing any row; support and service role only
set search_path = ''
as $$
begin
  -- `role` is the caller's SET ROLE (security definer changes current_user, not this setting).
  if coalesce(current_setting('role', true), '') <> 'service_role' and (select auth.role()) is distinct from 'service_role' then
    perform private.require_support();
  end if;
  return jsonb_build_object(
    'inbound_last_24h', (select coalesce(jsonb_object_agg(s.routing_status, s.n), '{}') from (
        select m.routing_status, count(*) as n from public.whatsapp_messages m
        where m.direction = 'incoming' and m.raw is not null and m.created_at > now() - interval '24 hours'
        group by m.routing_status) s),
    'held', (select count(*) from public.whatsapp_messages m where m.landlord_id is null and m.direction = 'incoming'
               and m.routing_status in ('ambiguous', 'unknown_sender', 'landlord_disabled')),
    'outbound_queued', (select count(*) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_sending', (select count(*) from public.whatsapp_messages m where m.status = 'sending'),
    'outbound_needs_review', (select count(*) from public.whatsapp_messages m where m.status = 'needs_review'),
    'oldest_queued_at', (select min(m.created_at) from public.whatsapp_messages m where m.status = 'queued'),
    'outbound_failed_last_24h', (select coalesce(jsonb_object_agg(coalesce(f.error_code::text, 'none'), f.n), '{}') from (
        select m.error_code, count(*) as n from public.whatsapp_messages m
        where m.status = 'failed' and m.failed_at > now() - interval '24 hours' group by m.error_code) f),
    'webhook_errors_last_24h', (select count(*) from private.webhook_errors e where e.received_at > now() - interval '24 hours'),
    'pending_statuses', (select count(*) from private.pending_message_statuses),
    'active_pins', (select count(*) from private.routing_pins p where p.expires_at > now()),
    'at', now());
end
$$;
comment on function public.whatsapp_service_status() is
  'Support and service role: counts for the status page and metrics (no message content).';
revoke execute on function public.whatsapp_service_status() from public, anon, authenticated;
grant execute on function public.whatsapp_service_status() to authenticated, service_role;

-- Status page and metrics filter these without scanning history.
create index whatsapp_messages_created_at_idx on public.whatsapp_messages (created_at);
create index whatsapp_messages_failed_idx on public.whatsapp_messages (failed_at) where status = 'failed';
