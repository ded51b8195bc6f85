-- Why: a reply stuck in 'needs_review' (the sender stopped between Meta's answer and recording
-- it, and no status webhook named it) waits for a person who has checked the tenant's chat.
-- This is how they settle it — instead of a raw UPDATE: re-queue it (it was not delivered) or
-- mark it failed. Support staff and the service role only; every settlement is audited.

create function public.settle_outbound_message(message_id uuid, outcome text, note text)
returns jsonb
language plpgsql
security definer -- changes any landlord's outbound message and writes the audit log; support and service role only
set search_path = ''
as $$
declare
  actor uuid := (select auth.uid());
  m public.whatsapp_messages;
  why text := nullif(btrim(note), '');
begin
  if coalesce(current_setting('role', true), '') <> 'service_role' and (select auth.role()) is distinct from 'service_role' then
    actor := private.require_support();
  end if;
  if outcome is null or outcome not in ('requeue', 'failed') then
    raise exception using errcode = '22023', detail = 'invalid_value', message = format('invalid outcome %L', outcome),
      hint = 'requeue (the tenant did not get it) or failed';
  end if;
  if why is null then
    raise exception using errcode = '22023', detail = 'invalid_value', message = 'a note is required', hint = 'say what you checked, e.g. "not in the tenant''s chat"';
  end if;
  select * into m from public.whatsapp_messages x
    where x.id = message_id and x.direction = 'outgoing' and x.status = 'needs_review' for update;
  if m.id is null then
    raise exception using errcode = 'P0002', detail = 'not_found', message = 'no outbound message needing review with this id',
      hint = 'only needs_review messages can be settled';
  end if;
  update public.whatsapp_messages x set
    status = case when outcome = 'requeue' then 'queued' else 'failed' end,
    next_attempt_at = case when outcome = 'requeue' then now() end,
    failed_at = case when outcome = 'failed' then now() else x.failed_at end,
    error_title = case when outcome = 'failed' then 'failed after review: ' || why else x.error_title end
  where x.id = m.id;
  insert into private.support_audit_log (actor_id, actor_email, action, message_id, landlord_id, reason)
  values (coalesce(actor, '00000000-0000-0000-0000-000000000000'), (select auth.jwt()) ->> 'email',
          case when outcome = 'requeue' then 'requeue_outbound' else 'fail_outbound' end, m.id, m.landlord_id, why);
  return jsonb_build_object('id', m.id, 'status', case when outcome = 'requeue' then 'queued' else 'failed' end);
end
$$;
comment on function public.settle_outbound_message(uuid, text, text) is
  'Support / service role: settle an outbound message in needs_review after checking the tenant''s chat: requeue or failed. Audited.';
revoke execute on function public.settle_outbound_message(uuid, text, text) from public, anon, authenticated;
grant execute on function public.settle_outbound_message(uuid, text, text) to authenticated, service_role;
