-- Routing proposal 1 (benchmarked by scripts/bench in the scratch database only; not a migration).
-- Why: issue 16 asks what the live inbox costs routing, measured in the same run: "before" routes
-- with the Realtime broadcasts (one realtime.send per routed message, in place of the notification
-- row and pg_notify they replaced); this step turns the broadcast triggers off.

alter table public.whatsapp_messages disable trigger whatsapp_messages_publish;
alter table public.whatsapp_conversations disable trigger whatsapp_conversations_publish;
