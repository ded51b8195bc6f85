-- Inbox proposal 1 (benchmarked by scripts/bench in the scratch database only; not a migration).
-- Why: the target shape once the multi-WABA backfill is complete (every history row then has
-- landlord_id = user_id) and support reads held messages only through
-- public.list_held_messages() (security definer, already there): one indexable arm,
-- landlord_id = auth.uid(), and an index that answers "this landlord's conversation, newest
-- first" directly: (landlord_id, conversation_id, sent_at desc, id desc) replaces
-- whatsapp_messages_landlord_id_idx (its prefix still serves the landlord_id foreign key and
-- landlord-wide queries). Pages stay O(50 rows) whatever the landlord, conversation or held
-- queue size, and queries that name only the landlord stay indexed. It also fixes the same
-- BitmapAnd in service-side queries that filter on conversation_id and landlord_id.

drop policy "landlords read their messages, support reads held messages" on public.whatsapp_messages;
create policy "landlords can read their messages" on public.whatsapp_messages
  for select to authenticated
  using (landlord_id = (select auth.uid()));
create index whatsapp_messages_landlord_conversation_idx
  on public.whatsapp_messages (landlord_id, conversation_id, sent_at desc, id desc);
drop index public.whatsapp_messages_landlord_id_idx;
analyze public.whatsapp_messages;
