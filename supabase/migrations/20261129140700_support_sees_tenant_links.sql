-- Why: support must tell candidates apart even when a hostile landlord copied a display name:
-- each candidate of a held message shows the landlord's id and email, the state and age of
-- their link with the phone, and whether another candidate has the same name. Assigning to a
-- landlord the tenant has not confirmed, or who has not opted in, needs an explicit reason and
-- is audited as such. Reports (a tenant tapping "Report spam") are listed for support.

-- Candidates of a held message as support sees them: recorded at routing, with what is true now.
create function private.candidates_for_support(phone text, recorded jsonb)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(x.candidate order by x.candidate ->> 'landlord_name', x.candidate ->> 'landlord_id'), '[]')
  from (
    select jsonb_build_object(
             'landlord_id', c ->> 'landlord_id', 'landlord_name', c ->> 'landlord_name', 'landlord_email', up.email,
             'property_address', c ->> 'property_address', 'tenant_name', c ->> 'tenant_name',
             'whatsapp_enabled', coalesce(up.whatsapp_enabled, false),
             'link_state', coalesce(l.state, 'unconfirmed'), 'link_via', l.state_via,
             'link_since', coalesce(l.state_changed_at, l.created_at),
             'same_name_as_another_candidate', count(*) over (partition by lower(btrim(c ->> 'landlord_name'))) > 1) as candidate
    from jsonb_array_elements(coalesce(recorded, '[]')) c
    left join public.user_profiles up on up.id = (c ->> 'landlord_id')::uuid
    left join public.whatsapp_tenant_links l
      on l.landlord_id = (c ->> 'landlord_id')::uuid and l.tenant_phone = candidates_for_support.phone
  ) x
$$;
comment on function private.candidates_for_support(text, jsonb) is
  'A held message''s candidates with landlord id and email, link state and age, and a flag for a shared display name.';

create or replace function public.list_held_messages(status text default null, after_id uuid default null, page_size integer default 50)
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
         private.candidates_for_support(m.tenant_phone, d.routing_metadata -> 'candidates')
  from public.whatsapp_messages m
  left join private.whatsapp_message_details d on d.message_id = m.id
  where m.is_held
    and (list_held_messages.status is null or m.routing_status = list_held_messages.status)
    and (cursor_at is null or (m.created_at, m.id) < (cursor_at, after_id))
  order by m.created_at desc, m.id desc
  limit page_size;
end
$$;

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
  target public.user_profiles;
  link text;
  conversation uuid;
  why text := nullif(btrim(reason), '');
  needs_reason text[];
begin
  if pin_days is null or pin_days not between 0 and 365 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'pin_days must be between 0 and 365', hint = '0 for no pin';
  end if;
  select * into target from public.user_profiles up where up.id = assign_held_message.landlord_id;
  if target.id is null then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'landlord not found', hint = 'pick one of the message''s candidates';
  end if;
  -- The router never files a message into a conversation its landlord has blocked; neither does support.
  if exists (select 1 from public.whatsapp_conversations cv
             where cv.landlord_id = target.id and cv.tenant_phone = m.tenant_phone and cv.status = 'blocked') then
    raise exception using errcode = '55000', message = 'this landlord has blocked this phone', detail = 'landlord_blocked_phone',
      hint = 'the landlord must unblock the conversation first; or assign the message to another landlord';
  end if;
  select c into candidate from private.whatsapp_message_details d, jsonb_array_elements(coalesce(d.routing_metadata -> 'candidates', '[]')) c
    where d.message_id = m.id and (c ->> 'landlord_id')::uuid = target.id;
  link := private.link_state(target.id, m.tenant_phone);
  needs_reason := array_remove(array[
    case when candidate is null then 'not a routing candidate' end,
    case when link <> 'confirmed' then 'the tenant has not confirmed this landlord (' || link || ')' end,
    case when not target.whatsapp_enabled then 'the landlord has not opted in' end], null);
  if cardinality(needs_reason) > 0 and why is null then
    raise exception using errcode = '22023', detail = 'invalid_value',
      message = 'a reason is required: ' || array_to_string(needs_reason, '; '),
      hint = 'say why this landlord is right, e.g. "tenant confirmed by phone call"';
  end if;
  if pin_days > 0 and not exists (select 1 from private.tenant_landlord_routing r
                                  where r.tenant_phone = m.tenant_phone and r.landlord_id = target.id) then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'cannot pin: the landlord has no active lease for this phone',
      hint = 'pins only choose among current candidates; assign without a pin';
  end if;

  conversation := private.file_held_message(m.id, target.id,
    jsonb_build_object('assigned_by', actor, 'assigned_at', now(), 'reason', why));

  if pin_days > 0 then
    insert into private.routing_pins as p (phone, landlord_id, expires_at, created_by, reason, source)
    values (m.tenant_phone, target.id, now() + make_interval(days => pin_days), actor, why, 'support')
    on conflict (phone) do update set landlord_id = excluded.landlord_id, expires_at = excluded.expires_at,
      created_by = excluded.created_by, reason = excluded.reason, source = 'support', created_at = now();
  end if;

  insert into private.support_audit_log (actor_id, actor_email, action, message_id, landlord_id, pin_days, reason, phone, details)
  values (actor, (select auth.jwt()) ->> 'email', case when pin_days > 0 then 'assign_and_pin' else 'assign' end,
          m.id, target.id, pin_days, why, m.tenant_phone,
          jsonb_build_object('held_as', m.routing_status, 'candidate', candidate is not null, 'conversation_id', conversation,
                             'link_state', link, 'landlord_opted_in', target.whatsapp_enabled, 'override', needs_reason));

  return jsonb_build_object('message_id', m.id, 'conversation_id', conversation, 'landlord_id', target.id,
                            'pinned_until', case when pin_days > 0 then now() + make_interval(days => pin_days) end);
end
$$;

create function public.list_tenant_reports(page_size integer default 50)
returns table (reported_at timestamptz, tenant_phone text, landlord_id uuid, landlord_name text, landlord_email text,
               what_the_tenant_saw text, links_declined_by_phone bigint)
language plpgsql
stable
security definer -- reads the private audit log; support only
set search_path = ''
as $$
begin
  perform private.require_support();
  if page_size is null or page_size not between 1 and 200 then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'page_size must be between 1 and 200', hint = 'e.g. 50';
  end if;
  return query
  select a.created_at, a.phone, a.landlord_id, up.full_name, up.email, a.details ->> 'label',
         (select count(*) from public.whatsapp_tenant_links l where l.landlord_id = a.landlord_id and l.state = 'declined')
  from private.support_audit_log a
  left join public.user_profiles up on up.id = a.landlord_id
  where a.action = 'consent_report'
  order by a.created_at desc, a.id desc
  limit page_size;
end
$$;
comment on function public.list_tenant_reports(integer) is
  'Support: tenants who tapped "Report spam" on a consent request, newest first, with how many phones declined that landlord.';
revoke execute on function public.list_tenant_reports(integer) from public, anon, authenticated;
grant execute on function public.list_tenant_reports(integer) to authenticated;

create index support_audit_log_reports_idx on private.support_audit_log (created_at desc) where action = 'consent_report';
