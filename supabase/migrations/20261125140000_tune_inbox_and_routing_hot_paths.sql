-- Why: what the benchmarks (docs/benchmarks.md) found on the two hot paths.
--
-- 1. The landlord inbox. The select policy on whatsapp_messages ORs three arms; each was
--    indexable, so for one conversation the planner built BitmapAnd(conversation index,
--    BitmapOr(landlord_id, user_id, held-messages index)): every page read all of the landlord's
--    message ids and every held message, then sorted (16 ms at 10M messages vs 0.5 ms without
--    RLS). Written as a CASE, the support arm is no index arm, the OR is a filter, and a page is
--    an ordered scan of whatsapp_messages_conversation_idx that stops after 50 rows. The rows
--    visible to every role are exactly the same.
-- 2. Inbound routing. Every message is inserted into every index of whatsapp_messages and
--    conversations are updated on every message, so every index there costs on the hot path:
--    * whatsapp_messages_user_id_idx duplicated the leading column of
--      whatsapp_messages_user_id_sent_at_idx; both only matter for multi-WABA history rows;
--    * reply_to_message_id, tenant_id and property_id are null on many rows: partial indexes
--      still serve their foreign keys ("= x" implies "is not null");
--    * created_at only serves time-window counts (status page, metrics): BRIN, not B-tree;
--    * whatsapp_conversations_tenant_phone_idx was never used (lookups go through the unique
--      (landlord_id, tenant_phone) key);
--    * landlord notifications do not need foreign keys to the message and conversation (a
--      notifier skips notifications whose message is gone); dropping them saves two parent-row
--      locks and two index inserts per message.

-- 1. ------------------------------------------------------------------------------------------
drop policy "landlords read their messages, support reads held messages" on public.whatsapp_messages;
create policy "landlords read their messages, support reads held messages" on public.whatsapp_messages
  for select to authenticated
  using (
    landlord_id = (select auth.uid())
    or user_id = (select auth.uid())
    or case when (select private.is_support())
            then landlord_id is null and direction = 'incoming'
                 and routing_status in ('ambiguous', 'unknown_sender', 'landlord_disabled')
            else false end
  );

-- 2. ------------------------------------------------------------------------------------------
drop index public.whatsapp_messages_user_id_idx;
drop index public.whatsapp_messages_user_id_sent_at_idx;
create index whatsapp_messages_user_id_sent_at_idx on public.whatsapp_messages (user_id, sent_at desc)
  where user_id is not null;
drop index public.whatsapp_messages_reply_to_message_id_idx;
create index whatsapp_messages_reply_to_message_id_idx on public.whatsapp_messages (reply_to_message_id)
  where reply_to_message_id is not null;
drop index public.whatsapp_messages_tenant_id_idx;
create index whatsapp_messages_tenant_id_idx on public.whatsapp_messages (tenant_id) where tenant_id is not null;
drop index public.whatsapp_messages_property_id_idx;
create index whatsapp_messages_property_id_idx on public.whatsapp_messages (property_id) where property_id is not null;
drop index public.whatsapp_messages_created_at_idx;
create index whatsapp_messages_created_at_brin on public.whatsapp_messages using brin (created_at);
drop index public.whatsapp_conversations_tenant_phone_idx;

alter table private.landlord_notifications
  drop constraint landlord_notifications_conversation_id_fkey,
  drop constraint landlord_notifications_message_id_fkey;
drop index private.landlord_notifications_conversation_id_idx;
drop index private.landlord_notifications_message_id_idx;

