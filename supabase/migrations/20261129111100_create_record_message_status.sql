-- Why: delivery statuses arrive late, twice and out of order. They must never go backwards
-- (a late 'sent' does not overwrite 'read'; 'read' may come without 'delivered'), 'failed'
-- records Meta's code and title, and a status for a wamid we do not know yet (the sender has
-- not recorded it) is kept and applied when the wamid appears.

create function private.status_rank(status text)
returns numeric
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select case status
    when 'queued' then 0 when 'sending' then 1 when 'needs_review' then 1
    when 'sent' then 2 when 'failed' then 2.5 when 'delivered' then 3 when 'read' then 4
    else -1 end
$$;
comment on function private.status_rank(text) is 'Order of delivery statuses; a status only moves to a higher rank.';

create table private.pending_message_statuses (
  wamid text not null,
  status text not null check (status in ('sent', 'delivered', 'read', 'failed')),
  status_at timestamptz not null,
  errors jsonb,
  received_at timestamptz not null default now(),
  primary key (wamid, status)
);
comment on table private.pending_message_statuses is 'Statuses for wamids not (yet) in whatsapp_messages, applied when the wamid is recorded.';
alter table private.pending_message_statuses enable row level security;
revoke all on private.pending_message_statuses from public, anon, authenticated, service_role;

-- Apply one status to the message with this wamid. Returns false when no such message exists.
-- A status heard before (Meta redelivers webhooks) writes nothing, not even status_updated_at.
create function private.apply_message_status(wamid text, status text, at timestamptz, errors jsonb)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  err jsonb := errors -> 0;
  -- Meta's codes are integers; anything else is kept in error_details only, never a cast error
  err_code integer := case when errors -> 0 ->> 'code' ~ '^-?[0-9]{1,9}$' then (errors -> 0 ->> 'code')::integer end;
  m public.whatsapp_messages;
  n public.whatsapp_messages;
begin
  select * into m from public.whatsapp_messages w
    where w.wamid = apply_message_status.wamid and w.direction = 'outgoing'
    for update;
  if not found then
    return false;
  end if;
  n := m;
  if private.status_rank(apply_message_status.status) > private.status_rank(m.status) then
    n.status := apply_message_status.status;
  end if;
  case apply_message_status.status
    when 'delivered' then
      n.delivered_at := least(coalesce(m.delivered_at, at), at);
    when 'read' then
      n.read_at := least(coalesce(m.read_at, at), at);
    when 'failed' then
      n.failed_at := coalesce(m.failed_at, at);
      n.error_code := coalesce(err_code, m.error_code);
      n.error_title := coalesce(err ->> 'title', err ->> 'message', m.error_title);
      n.error_details := coalesce(errors, m.error_details);
    else
      null;
  end case;
  if (n.status, n.delivered_at, n.read_at, n.failed_at, n.error_code, n.error_title, n.error_details)
     is distinct from (m.status, m.delivered_at, m.read_at, m.failed_at, m.error_code, m.error_title, m.error_details) then
    update public.whatsapp_messages w set
      status = n.status, delivered_at = n.delivered_at, read_at = n.read_at, failed_at = n.failed_at,
      error_code = n.error_code, error_title = n.error_title, error_details = n.error_details,
      status_updated_at = now()
    where w.id = m.id;
  end if;
  return true;
end
$$;

comment on function private.apply_message_status(text, text, timestamptz, jsonb) is
  'Apply one delivery status to the outbound message with this wamid, never backwards; false when there is none.';

-- Called when an outbound message gets its wamid: statuses that arrived first are applied now.
create function private.apply_pending_statuses(wamid text)
returns integer
language plpgsql
security invoker
set search_path = ''
as $$
declare
  p record;
  n integer := 0;
begin
  for p in delete from private.pending_message_statuses ps where ps.wamid = apply_pending_statuses.wamid
           returning ps.status, ps.status_at, ps.errors loop
    perform private.apply_message_status(apply_pending_statuses.wamid, p.status, p.status_at, p.errors);
    n := n + 1;
  end loop;
  return n;
end
$$;

comment on function private.apply_pending_statuses(text) is 'Apply and remove the statuses that arrived before this wamid was recorded.';

create function public.record_message_status(wamid text, status text, at timestamptz, errors jsonb default null)
returns jsonb
language plpgsql
security definer -- webhook-facing: updates any landlord's message and a private table; service_role only
set search_path = ''
as $$
begin
  if nullif(btrim(wamid), '') is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'status without a message id',
      hint = 'pass value.statuses[].id';
  end if;
  if status is null or status not in ('sent', 'delivered', 'read', 'failed') then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('unknown message status %L', status),
      hint = 'one of sent, delivered, read, failed';
  end if;
  if at is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'status without a timestamp', hint = 'pass value.statuses[].timestamp';
  end if;
  if errors is not null and jsonb_typeof(errors) <> 'array' then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'errors must be a JSON array', hint = 'pass value.statuses[].errors';
  end if;
  if private.apply_message_status(wamid, status, at, errors) then
    return jsonb_build_object('wamid', wamid, 'status', status, 'applied', true, 'pending', false);
  end if;
  insert into private.pending_message_statuses (wamid, status, status_at, errors)
  values (record_message_status.wamid, record_message_status.status, at, errors)
  on conflict on constraint pending_message_statuses_pkey do nothing;
  return jsonb_build_object('wamid', wamid, 'status', status, 'applied', false, 'pending', true);
end
$$;
comment on function public.record_message_status(text, text, timestamptz, jsonb) is
  'Service role: apply a delivery status (sent < delivered < read; failed with code/title) without ever going backwards. '
  'Unknown wamids are kept and applied when the wamid is recorded.';
revoke execute on function public.record_message_status(text, text, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.record_message_status(text, text, timestamptz, jsonb) to service_role;
