-- Issue 18, step 1: the functions every routed message calls are plpgsql, so each is planned once
-- per session. A LANGUAGE sql function with `set search_path` is never inlined, and PostgreSQL 15
-- parses, analyses and plans its body again on every call (fmgr_sql): measured with perf on the
-- routing hot path, that was a third of a routed message's CPU. Same signatures, same results.

create or replace function private.link_state(landlord_id uuid, phone text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce((select l.state from public.whatsapp_tenant_links l
                   where l.landlord_id = link_state.landlord_id and l.tenant_phone = link_state.phone), 'unconfirmed');
end
$$;

create or replace function private.routing_candidates(phone text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
             'landlord_id', r.landlord_id, 'landlord_name', up.full_name, 'enabled', up.whatsapp_enabled,
             'tenant_id', r.tenant_id, 'tenant_name', t.name, 'property_id', r.property_id, 'property_address', p.address,
             'link_state', coalesce(l.state, 'unconfirmed'),
             'conversation_status', cv.status)
           order by r.landlord_id), '[]')
    from private.tenant_landlord_routing r
    join public.user_profiles up on up.id = r.landlord_id
    join public.tenants t on t.id = r.tenant_id
    join public.properties p on p.id = r.property_id
    left join public.whatsapp_tenant_links l on l.landlord_id = r.landlord_id and l.tenant_phone = routing_candidates.phone
    left join public.whatsapp_conversations cv on cv.landlord_id = r.landlord_id and cv.tenant_phone = routing_candidates.phone
    where r.tenant_phone = routing_candidates.phone);
end
$$;

create or replace function private.webhook_time(unix_seconds text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  t timestamptz;
begin
  if unix_seconds is null or unix_seconds !~ '^[0-9]{1,12}$' then
    return null;
  end if;
  t := to_timestamp(unix_seconds::bigint);
  return case when t between now() - interval '30 days' and now() + interval '1 hour' then t end;
end
$$;

create or replace function private.route_result(m public.whatsapp_messages, duplicate boolean)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object('message_id', m.id, 'wamid', m.wamid, 'routing_status', m.routing_status,
                            'landlord_id', m.landlord_id, 'tenant_id', m.tenant_id,
                            'conversation_id', m.conversation_id, 'duplicate', duplicate);
end
$$;

create or replace function private.conversation_event(c public.whatsapp_conversations)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object('id', c.id, 'tenant_phone', c.tenant_phone, 'status', c.status, 'unread_count', c.unread_count,
                            'last_message_at', c.last_message_at, 'last_message_preview', c.last_message_preview);
end
$$;

create or replace function private.message_event(m public.whatsapp_messages)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return jsonb_build_object(
    'id', m.id, 'conversation_id', m.conversation_id, 'direction', m.direction, 'is_from_tenant', m.is_from_tenant,
    'type', m.type, 'body', m.body, 'landlord_signature', m.landlord_signature, 'media_mime_type', m.media_mime_type,
    'media_caption', m.media_caption, 'status', m.status, 'sent_at', m.sent_at,
    'conversation', (select private.conversation_event(c) from public.whatsapp_conversations c where c.id = m.conversation_id));
end
$$;

create or replace function private.held_event(m public.whatsapp_messages)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object('id', m.id, 'routing_status', m.routing_status, 'tenant_phone', m.tenant_phone,
                            'sent_at', m.sent_at, 'preview', left(coalesce(m.body, m.media_caption, '[' || m.type || ']'), 160));
end
$$;
