-- Why: delivery statuses arrive late, twice and out of order. They must never go backwards
-- (a late 'sent' does not overwrite 'read'; 'read' may come without 'delivered'), 'failed'
-- records Meta's code and title, and a status for a wamid we do not know yet (the sender has
-- not recorded it) is kept and applied when the wamid appears.

create or replace function private.status_rank(status text)
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
create or replace function private.apply_message_status(wamid text, status text, at timestamptz, errors jsonb)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  err jsonb := errors -> 0;
begin
  update public.whatsapp_messages m set
    status = case when private.status_rank(apply_message_status.status) > private.status_rank(m.status)
                  then apply_message_status.status else m.status end,
    delivered_at = case when apply_message_status.status = 'delivered' then least(coalesce(m.delivered_at, at), at) else m.delivered_at end,
    read_at = case when apply_message_status.status = 'read' then least(coalesce(m.read_at, at), at) else m.read_at end,
    failed_at = case when apply_message_status.status = 'failed' then coalesce(m.failed_at, at) else m.failed_at end,
    error_code = case when apply_message_status.status = 'failed' then coalesce((err ->> 'code')::int, m.error_code) else m.error_code end,
    error_title = case when apply_message_status.status = 'failed' then coalesce(err ->> 'title', err ->> 'message', m.error_title) else m.error_title end,
    error_details = case when apply_message_status.status = 'failed' then coalesce(errors, m.error_details) else m.error_details end,
    status_updated_at = now()
  where m.wamid = apply_message_status.wamid and m.direction = 'outgoing';
  return found;
end
$$;

-- Called when an outbound message gets its wamid: statuses that arrived first are applied now.
create or replace function private.apply_pending_statuses(wamid text)
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

create or replace function public.record_message_status(wamid text, status text, at timestamptz, errors jsonb default null)
returns jsonb
language plpgsql
security definer -- webhook-facing: updates any landlord's message and a private table; service_role only
set search_path = ''
as $$
begin
  if nullif(btrim(wamid), '') is null then
    raise exception using errcode = '22023', message = 'status without a message id',
      hint = 'pass value.statuses[].id';
  end if;
  if status is null or status not in ('sent', 'delivered', 'read', 'failed') then
    raise exception using errcode = '22023', message = format('unknown message status %L', status),
      hint = 'one of sent, delivered, read, failed';
  end if;
  if at is null then
    raise exception using errcode = '22023', message = 'status without a timestamp', hint = 'pass value.statuses[].timestamp';
  end if;
  if errors is not null and jsonb_typeof(errors) <> 'array' then
    raise exception using errcode = '22023', message = 'errors must be a JSON array', hint = 'pass value.statuses[].errors';
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
