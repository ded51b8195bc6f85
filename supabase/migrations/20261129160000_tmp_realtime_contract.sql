-- TEMPORARY, LOCAL TESTING ONLY: delete this file when the real Realtime migrations of issue 16
-- land (they create the same policy name, and would fail next to it).
--
-- Why: the landlord client's Realtime subscription (app/client/realtime.py) and the local
-- Realtime stand-in (app/local/realtime.py) are tested end to end (tests/test_realtime.py)
-- before the SQL side exists. This mirrors the contract's RLS on realtime.messages and adds just
-- enough broadcasting to exercise them: every message filed with a landlord is sent as a
-- `message` event on the private topic `landlord:<landlord uuid>`.
--
-- The contract: topics `landlord:<uuid>` (each landlord) and `support` (JWT app_metadata.role =
-- support), all private; landlords and support may receive their own topic; no insert policy,
-- so no client can send; anon gets nothing.

create policy "landlords and support receive their own topic" on realtime.messages
  for select to authenticated
  using (
    (
      realtime.topic() = 'landlord:' || (select auth.uid())::text
      or (realtime.topic() = 'support' and (select private.is_support()))
    )
    and extension = 'broadcast'
  );

create function private.trg_tmp_broadcast_message()
returns trigger
language plpgsql
security definer -- inserts into realtime.messages, where the API roles have no insert policy
set search_path = ''
as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'id', new.id,
      'conversation_id', new.conversation_id,
      'direction', new.direction,
      'type', new.type,
      'body', new.body,
      'status', new.status,
      'sent_at', new.sent_at,
      'is_from_tenant', new.is_from_tenant,
      'media_mime_type', new.media_mime_type
    ),
    'message',
    'landlord:' || new.landlord_id::text,
    true
  );
  return null;
end
$$;
revoke execute on function private.trg_tmp_broadcast_message() from public, anon, authenticated;
comment on function private.trg_tmp_broadcast_message() is
  'TEMPORARY (tests of the Realtime stand-in): broadcast a message filed with a landlord on landlord:<id>.';

create trigger whatsapp_messages_tmp_broadcast after insert on public.whatsapp_messages
  for each row when (new.landlord_id is not null)
  execute function private.trg_tmp_broadcast_message();
