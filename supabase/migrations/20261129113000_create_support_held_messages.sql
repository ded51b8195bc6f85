-- Why: messages the router cannot deliver (ambiguous, unknown_sender, landlord_disabled) are
-- stored but visible to no landlord (whatsapp_messages.is_held). ZenRent support staff
-- (private.is_support()) read those held messages and nothing else, and resolve them through
-- RPCs: list (with the routing candidates), assign (delivering exactly as the router would,
-- optionally pinning the phone), dismiss (spam, wrong number; kept and marked). Every support
-- action lands in an append-only audit log.

-- The support queue: held messages, newest first.
create index whatsapp_messages_held_idx on public.whatsapp_messages (created_at desc, id desc) where is_held;

-- Audit: append-only; no API role has any privilege on it, and rows are never changed.
create table private.support_audit_log (
  id bigint generated always as identity primary key,
  actor_id uuid not null,
  actor_email text,
  action text not null check (action in ('assign', 'assign_and_pin', 'dismiss', 'requeue_outbound', 'fail_outbound')),
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

create function private.require_support()
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if (select auth.uid()) is null or not private.is_support() then
    raise exception using errcode = '42501', message = 'support staff only', detail = 'support_only',
      hint = 'sign in with a user whose app_metadata.role is support';
  end if;
  return (select auth.uid());
end
$$;
comment on function private.require_support() is 'The caller''s uid if they are support staff; 42501 otherwise.';

create function private.held_message(message_id uuid)
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
  if m.id is null or not m.is_held then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'held message not found', hint = 'list them with list_held_messages()';
  end if;
  return m;
end
$$;
comment on function private.held_message(uuid) is 'A held inbound message, locked for update; P0002 when it is not (or no longer) held.';

create function public.list_held_messages(status text default null, after_id uuid default null, page_size integer default 50)
returns table (id uuid, wamid text, routing_status text, tenant_phone text, contact_name text, type text, body text,
               media_id text, media_mime_type text, media_caption text, sent_at timestamptz, created_at timestamptz,
               rule text, candidates jsonb)
language plpgsql
stable
security definer -- reads private.whatsapp_message_details, exposing only the candidates of held messages
set search_path = ''
as $$
declare
  cursor_at timestamptz;
begin
  perform private.require_support();
  if status is not null and status not in ('ambiguous', 'unknown_sender', 'landlord_disabled') then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('invalid held status %L', status),
      hint = 'one of ambiguous, unknown_sender, landlord_disabled, or null for all';
  end if;
  if page_size is null or page_size not between 1 and 200 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'page_size must be between 1 and 200', hint = 'e.g. 50';
  end if;
  if after_id is not null then
    select m.created_at into cursor_at from public.whatsapp_messages m where m.id = after_id;
    if cursor_at is null then
      raise exception using errcode = 'P0002', detail = 'not_found', message = 'after_id not found', hint = 'pass the id of the last row of the previous page';
    end if;
  end if;
  return query
  select m.id, m.wamid, m.routing_status, m.tenant_phone, m.contact_name, m.type, m.body,
         m.media_id, m.media_mime_type, m.media_caption, m.sent_at, m.created_at,
         d.routing_metadata ->> 'rule',
         coalesce((select jsonb_agg(jsonb_build_object(
                     'landlord_id', c ->> 'landlord_id', 'landlord_name', c ->> 'landlord_name',
                     'property_address', c ->> 'property_address', 'tenant_name', c ->> 'tenant_name',
                     'whatsapp_enabled', (c ->> 'enabled')::boolean))
                   from jsonb_array_elements(coalesce(d.routing_metadata -> 'candidates', '[]')) c), '[]')
  from public.whatsapp_messages m
  left join private.whatsapp_message_details d on d.message_id = m.id
  where m.is_held
    and (list_held_messages.status is null or m.routing_status = list_held_messages.status)
    and (cursor_at is null or (m.created_at, m.id) < (cursor_at, after_id))
  order by m.created_at desc, m.id desc
  limit page_size;
end
$$;
comment on function public.list_held_messages(text, uuid, integer) is
  'Support: held messages newest first (keyset after_id), with the routing candidates (landlord, property, tenant).';

create function public.assign_held_message(message_id uuid, landlord_id uuid, pin_days integer default 0, reason text default null)
returns jsonb
language plpgsql
security definer -- delivers into any landlord's conversation and writes the private audit log and pins; support only
set search_path = ''
as $$
declare
  actor uuid := private.require_support();
  m public.whatsapp_messages := private.held_message(message_id);
  candidates jsonb := (select d.routing_metadata -> 'candidates' from private.whatsapp_message_details d where d.message_id = m.id);
  candidate jsonb;
  route private.tenant_landlord_routing;
  conversation uuid;
  why text := nullif(btrim(reason), '');
begin
  if pin_days is null or pin_days not between 0 and 365 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'pin_days must be between 0 and 365', hint = '0 for no pin';
  end if;
  if not exists (select 1 from public.user_profiles up where up.id = assign_held_message.landlord_id) then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'landlord not found', hint = 'pick one of the message''s candidates';
  end if;
  select c into candidate from jsonb_array_elements(coalesce(candidates, '[]')) c
    where (c ->> 'landlord_id')::uuid = assign_held_message.landlord_id;
  if candidate is null and why is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'this landlord is not one of the message''s routing candidates',
      hint = 'give a reason to assign it to another landlord';
  end if;
  -- The router never files a message into a conversation its landlord has blocked; neither does support.
  if exists (select 1 from public.whatsapp_conversations cv
             where cv.landlord_id = assign_held_message.landlord_id and cv.tenant_phone = m.tenant_phone
               and cv.status = 'blocked') then
    raise exception using errcode = '55000', message = 'this landlord has blocked this phone', detail = 'landlord_blocked_phone',
      hint = 'the landlord must unblock the conversation first; or assign the message to another landlord';
  end if;
  select * into route from private.tenant_landlord_routing r
    where r.tenant_phone = m.tenant_phone and r.landlord_id = assign_held_message.landlord_id
    order by r.lease_start_date desc, r.lease_id limit 1;
  if pin_days > 0 and route.lease_id is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'cannot pin: the landlord has no active lease for this phone',
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
                            where r.wamid = m.reply_to_wamid and r.landlord_id = assign_held_message.landlord_id)
  where x.id = m.id;
  perform private.add_routing_metadata(m.id, jsonb_build_object('assigned_by', actor, 'assigned_at', now(),
                                                                'held_as', m.routing_status, 'reason', why));

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

create function public.dismiss_held_message(message_id uuid, reason text)
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
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'a reason is required to dismiss a message', hint = 'e.g. spam, wrong number';
  end if;
  update public.whatsapp_messages x set routing_status = 'dismissed' where x.id = m.id;
  perform private.add_routing_metadata(m.id, jsonb_build_object('dismissed_by', actor, 'dismissed_at', now(),
                                                                'held_as', m.routing_status, 'reason', why));
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
