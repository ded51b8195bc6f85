-- Why: send_whatsapp_media (20261129170100) inserts a landlord's outgoing file with
-- media_status = 'pending', and the download trigger of 20261129170000 fired on any pending
-- message: every outgoing file also got a `download` job with no media id, which the media worker
-- could neither do nor safely fail (failing it would fail the queued message). Downloads are for
-- what tenants send; a landlord's file has its `upload` job. This recreates the trigger with the
-- direction in its condition and removes the download jobs queued for outgoing messages.

drop trigger whatsapp_messages_queue_media_download on public.whatsapp_messages;
create trigger whatsapp_messages_queue_media_download after insert on public.whatsapp_messages
  for each row when (new.media_status = 'pending' and new.direction = 'incoming')
  execute function private.trg_queue_media_download();

delete from private.media_jobs j
using public.whatsapp_messages m
where m.id = j.message_id and j.kind = 'download' and m.direction = 'outgoing';
