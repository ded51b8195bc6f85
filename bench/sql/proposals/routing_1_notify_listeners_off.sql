-- Routing proposal 1 (benchmarked by scripts/bench in the scratch database only; not a migration).
-- Why: with private.whatsapp_settings.notify_listeners on (the default), the notification trigger
-- calls pg_notify() for every delivered message. A transaction that has notified takes a
-- database-wide lock in PreCommit_Notify (wait event Lock:object) and holds it until its commit
-- record is flushed, so routed messages commit one at a time. Nothing in the repository LISTENs
-- on zenrent_whatsapp_inbound; the durable queue (public.claim_landlord_notifications()) and the
-- supabase_realtime publication already carry new messages. This measures the switch turned off.

select public.configure_whatsapp('{"notify_listeners": false}');
