-- Why: landlords read their own inbox, but every write goes through RPCs that enforce the rules
-- (opt-in, 24 h window, opt-outs, signature): the baseline's direct INSERT/UPDATE/DELETE on
-- messages closes. A landlord reads the messages routed to them (landlord_id) and their own
-- multi-WABA history (user_id); support staff read held messages (is_held), nothing else. Every
-- column may be read (`select *` works): what landlords must not see is in
-- private.whatsapp_message_details. Both inbox tables stream through supabase_realtime under RLS.

drop policy "landlords can add messages" on public.whatsapp_messages;
drop policy "landlords can update their messages" on public.whatsapp_messages;
drop policy "landlords can delete their messages" on public.whatsapp_messages;
drop policy "landlords can read their messages" on public.whatsapp_messages;

revoke all on public.whatsapp_messages from authenticated;
grant select on public.whatsapp_messages to authenticated;

-- Support staff: users whose JWT carries app_metadata.role = 'support' (server-set; users
-- cannot change their app_metadata).
create function private.is_support()
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

-- One policy for the one command and role. Written with CASE, the support arm is no index arm:
-- a landlord's page is an ordered scan of whatsapp_messages_conversation_idx that stops after a
-- page (an OR of three indexable arms made the planner read every held message, 16 ms at 10M
-- messages; docs/benchmarks.md).
create policy "landlords read their messages, support reads held messages" on public.whatsapp_messages
  for select to authenticated
  using (
    landlord_id = (select auth.uid())
    or user_id = (select auth.uid())
    or case when (select private.is_support()) then is_held else false end
  );

alter publication supabase_realtime add table public.whatsapp_messages, public.whatsapp_conversations;
