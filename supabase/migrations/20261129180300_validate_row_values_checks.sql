-- Issue 18, step 3 (second half): validate the constraints 20261129180200 added NOT VALID. VALIDATE
-- CONSTRAINT scans each table under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on.
alter table public.whatsapp_messages validate constraint whatsapp_messages_values_check;
alter table public.whatsapp_conversations validate constraint whatsapp_conversations_values_check;
