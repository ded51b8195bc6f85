-- Why: in property management the message that matters most is a photo of the leak, and Meta
-- keeps webhook media for only 7 days, behind ZenRent's access token: a landlord's app could not
-- fetch it, and after a week it was gone. Every inbound image, audio (voice notes included),
-- video, document and sticker, delivered or held, is queued for download when it is stored; the
-- media worker (python -m app.media, docs/media.md) claims jobs with skip locked, downloads with
-- the bearer token under a per-type cap, checks MIME type and SHA-256, and uploads to the private
-- Storage bucket whatsapp-media under a name that carries no user-typed text:
-- <landlord>/<conversation>/<message>.<ext> once filed, held/<message>.<ext> while held (moved
-- when support or the tenant's pick files it). Failures keep what is recoverable: retryable ones
-- come back with backoff inside Meta's 7-day retention, a job claimed longer than 10 minutes ago
-- (a killed worker) is claimed again, permanent ones mark the media failed with a code the
-- landlord's app can show. Storage RLS: a landlord reads only objects of their own messages,
-- support reads held media, clients write only under their own outbound folder.

-- messages: where their media is ---------------------------------------------------------------
alter table public.whatsapp_messages
  add column media_status text check (media_status in ('pending', 'stored', 'failed')),
  add column media_path text,
  add column media_size bigint,
  add column media_error text;

-- the queue ------------------------------------------------------------------------------------
create table private.media_jobs (
  id bigint generated always as identity primary key,
  message_id uuid not null references public.whatsapp_messages (id) on delete cascade,
  kind text not null check (kind in ('download', 'move')),
  media_id text,
  mime_type text,
  sha256 text,
  media_type text check (media_type in ('image', 'audio', 'video', 'document', 'sticker')),
  object_path text,
  from_path text,
  attempt_count integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  claimed_at timestamptz,
  done_at timestamptz,
  last_error text,
  created_at timestamptz not null default now()
);
create index media_jobs_due_idx on private.media_jobs (next_attempt_at, id) where done_at is null;
create index media_jobs_message_id_idx on private.media_jobs (message_id);
alter table private.media_jobs enable row level security;
revoke all on private.media_jobs from public, anon, authenticated, service_role;

-- The file extension of a WhatsApp MIME type ('bin' for any other).
create function private.media_extension(mime_type text)
returns text
language sql
immutable
security invoker
set search_path = ''
as $$
  select case lower(btrim(split_part(coalesce(media_extension.mime_type, ''), ';', 1)))
    when 'image/jpeg' then 'jpg' when 'image/png' then 'png' when 'image/webp' then 'webp'
    when 'audio/aac' then 'aac' when 'audio/amr' then 'amr' when 'audio/mpeg' then 'mp3'
    when 'audio/mp4' then 'm4a' when 'audio/ogg' then 'ogg'
    when 'video/mp4' then 'mp4' when 'video/3gpp' then '3gp'
    when 'text/plain' then 'txt' when 'application/pdf' then 'pdf'
    when 'application/vnd.ms-excel' then 'xls'
    when 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' then 'xlsx'
    when 'application/msword' then 'doc'
    when 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' then 'docx'
    when 'application/vnd.ms-powerpoint' then 'ppt'
    when 'application/vnd.openxmlformats-officedocument.presentationml.presentation' then 'pptx'
    else 'bin' end
$$;

comment on function private.media_extension(text) is 'The file extension of a WhatsApp MIME type (parameters ignored; bin for any other).';

-- Where a message's media belongs now: the landlord's folder once it is filed, else held/.
create function private.media_object_path(message_id uuid, landlord_id uuid, conversation_id uuid, mime_type text)
returns text
language sql
immutable
security invoker
set search_path = ''
as $$
  select case when media_object_path.landlord_id is not null and media_object_path.conversation_id is not null
              then media_object_path.landlord_id || '/' || media_object_path.conversation_id || '/'
              else 'held/' end
         || media_object_path.message_id || '.' || private.media_extension(media_object_path.mime_type)
$$;

-- Every stored inbound media message, delivered or held, gets a download job ---------------------
comment on function private.media_object_path(uuid, uuid, uuid, text) is
  'The object name of a message''s media: <landlord>/<conversation>/<message>.<ext> once filed, held/<message>.<ext> before.';

create function private.trg_media_pending()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  if new.direction = 'incoming' and new.media_id is not null
     and new.type in ('image', 'audio', 'video', 'document', 'sticker')
     and new.routing_status in ('delivered', 'ambiguous', 'unknown_sender', 'landlord_disabled') then
    new.media_status := 'pending';
  end if;
  return new;
end;
$$;
-- Fires for media messages only: text, the hot path, costs no trigger call.
create trigger whatsapp_messages_media_pending before insert on public.whatsapp_messages
  for each row when (new.media_id is not null and new.direction = 'incoming')
  execute function private.trg_media_pending();

comment on function private.trg_media_pending() is 'Trigger: a stored inbound media message''s media is pending.';

create function private.trg_queue_media_download()
returns trigger
language plpgsql
security definer -- writes private.media_jobs, which no API role may
set search_path = ''
as $$
begin
  insert into private.media_jobs (message_id, kind, media_id, mime_type, sha256, media_type)
  values (new.id, 'download', new.media_id, new.media_mime_type, new.media_sha256, new.type);
  return null;
end;
$$;
create trigger whatsapp_messages_queue_media_download after insert on public.whatsapp_messages
  for each row when (new.media_status = 'pending') execute function private.trg_queue_media_download();

-- A held message's stored media moves into the landlord's folder when support or the tenant files it.
comment on function private.trg_queue_media_download() is 'Trigger: queue the download of a pending media message.';

create function private.trg_queue_media_move()
returns trigger
language plpgsql
security definer -- writes private.media_jobs, which no API role may
set search_path = ''
as $$
begin
  insert into private.media_jobs (message_id, kind, mime_type, media_type, from_path)
  values (new.id, 'move', new.media_mime_type, new.type, new.media_path);
  return null;
end;
$$;
create trigger whatsapp_messages_queue_media_move after update of landlord_id on public.whatsapp_messages
  for each row when (old.landlord_id is null and new.landlord_id is not null
                     and new.media_status = 'stored' and new.media_path like 'held/%')
  execute function private.trg_queue_media_move();

comment on function private.trg_queue_media_move() is 'Trigger: a held message''s stored media moves to the landlord''s folder when it is filed.';

-- the worker's RPCs ------------------------------------------------------------------------------
create function public.claim_media_jobs(batch_size integer default 4)
returns table (job_id bigint, kind text, message_id uuid, media_id text, mime_type text, sha256 text,
               media_type text, object_path text, from_path text, attempt_count integer)
language sql
security definer -- claims rows of private.media_jobs, which no API role may read; service_role only
set search_path = ''
as $$
  with due as (
    select j.id
    from private.media_jobs j
    where j.done_at is null and j.next_attempt_at <= now()
      and (j.claimed_at is null or j.claimed_at < now() - interval '10 minutes')
    order by j.next_attempt_at, j.id
    limit greatest(1, least(coalesce(claim_media_jobs.batch_size, 4), 100))
    for update of j skip locked
  )
  update private.media_jobs j
     set claimed_at = now(), attempt_count = j.attempt_count + 1,
         object_path = private.media_object_path(m.id, m.landlord_id, m.conversation_id, j.mime_type)
    from due, public.whatsapp_messages m
   where j.id = due.id and m.id = j.message_id
  returning j.id, j.kind, j.message_id, j.media_id, j.mime_type, j.sha256, j.media_type, j.object_path,
            j.from_path, j.attempt_count
$$;
comment on function public.claim_media_jobs(integer) is
  'Service role: claim due media jobs (skip locked), reclaiming any claimed over 10 minutes ago (a worker that died).';
revoke execute on function public.claim_media_jobs(integer) from public, anon, authenticated;
grant execute on function public.claim_media_jobs(integer) to service_role;

create function public.complete_media_job(job_id bigint, stored_path text, size bigint)
returns void
language plpgsql
security definer -- writes private.media_jobs and media columns of messages; service_role only
set search_path = ''
as $$
declare
  v_message uuid;
  v_landlord uuid;
begin
  update private.media_jobs j set done_at = now(), claimed_at = null, last_error = null
   where j.id = complete_media_job.job_id and j.done_at is null
  returning j.message_id into v_message;
  if v_message is null then
    return;  -- already completed: a repeated call changes nothing
  end if;
  update public.whatsapp_messages m
     set media_status = 'stored', media_path = complete_media_job.stored_path,
         media_size = coalesce(complete_media_job.size, m.media_size), media_error = null
   where m.id = v_message
  returning m.landlord_id into v_landlord;
  -- Downloaded into held/ while support filed the message: move it now.
  if v_landlord is not null and complete_media_job.stored_path like 'held/%' then
    insert into private.media_jobs (message_id, kind, mime_type, media_type, from_path)
    select m.id, 'move', m.media_mime_type, m.type, m.media_path from public.whatsapp_messages m where m.id = v_message;
  end if;
end;
$$;
comment on function public.complete_media_job(bigint, text, bigint) is
  'Service role: a job''s media is stored at stored_path (size null, as for a move: unchanged); a download that finishes after its held message was filed queues the move.';
revoke execute on function public.complete_media_job(bigint, text, bigint) from public, anon, authenticated;
grant execute on function public.complete_media_job(bigint, text, bigint) to service_role;

create function public.fail_media_job(job_id bigint, error_code text, retryable boolean,
                                      retry_after_seconds integer default null)
returns void
language plpgsql
security definer -- writes private.media_jobs and media columns of messages; service_role only
set search_path = ''
as $$
declare
  j private.media_jobs;
  received timestamptz;
begin
  select * into j from private.media_jobs mj where mj.id = fail_media_job.job_id and mj.done_at is null for update;
  if j.id is null then
    return;
  end if;
  select m.created_at into received from public.whatsapp_messages m where m.id = j.message_id;
  -- Meta keeps a webhook's media for 7 days: retry until then, at most 10 attempts.
  if fail_media_job.retryable and j.attempt_count < 10 and received > now() - interval '7 days' then
    update private.media_jobs mj
       set claimed_at = null, last_error = fail_media_job.error_code,
           next_attempt_at = now() + make_interval(secs => greatest(
             coalesce(fail_media_job.retry_after_seconds, 0),
             least(3600, 30 * power(2, greatest(j.attempt_count - 1, 0))) * (0.5 + random())))
     where mj.id = j.id;
  else
    update private.media_jobs mj set done_at = now(), claimed_at = null, last_error = fail_media_job.error_code
     where mj.id = j.id;
    update public.whatsapp_messages m set media_status = 'failed', media_error = fail_media_job.error_code
     where m.id = j.message_id;
  end if;
end;
$$;
comment on function public.fail_media_job(bigint, text, boolean, integer) is
  'Service role: a media job failed; retryable ones come back with backoff inside Meta''s 7-day retention (at most 10 attempts), others mark the media failed with the code.';
revoke execute on function public.fail_media_job(bigint, text, boolean, integer) from public, anon, authenticated;
grant execute on function public.fail_media_job(bigint, text, boolean, integer) to service_role;

-- the bucket and who may read and write it ----------------------------------------------------
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('whatsapp-media', 'whatsapp-media', false, 104857600, array[
  'image/jpeg', 'image/png', 'image/webp',
  'audio/aac', 'audio/amr', 'audio/mpeg', 'audio/mp4', 'audio/ogg',
  'video/mp4', 'video/3gpp',
  'text/plain', 'application/pdf', 'application/vnd.ms-excel',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/msword',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'application/vnd.ms-powerpoint',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation']);

create policy "landlords read their media, support reads held media" on storage.objects
  for select to authenticated
  using (bucket_id = 'whatsapp-media'
         and ((storage.foldername(name))[1] = (select auth.uid())::text
              or ((storage.foldername(name))[1] = 'held' and (select private.is_support()))));

create policy "landlords upload their outbound media" on storage.objects
  for insert to authenticated
  with check (bucket_id = 'whatsapp-media' and (storage.foldername(name))[1] = (select auth.uid())::text
              and (storage.foldername(name))[2] = 'outbound');

create policy "landlords replace their outbound media" on storage.objects
  for update to authenticated
  using (bucket_id = 'whatsapp-media' and (storage.foldername(name))[1] = (select auth.uid())::text
         and (storage.foldername(name))[2] = 'outbound')
  with check (bucket_id = 'whatsapp-media' and (storage.foldername(name))[1] = (select auth.uid())::text
              and (storage.foldername(name))[2] = 'outbound');

create policy "landlords delete their outbound media" on storage.objects
  for delete to authenticated
  using (bucket_id = 'whatsapp-media' and (storage.foldername(name))[1] = (select auth.uid())::text
         and (storage.foldername(name))[2] = 'outbound');
