-- Why: three small leaks a hostile landlord or any database login could use.
--   * tenants.phone_e164 could be written directly, so the routing key could differ from the
--     phone the landlord sees: it is now derived on every insert and update, whatever the SET list.
--   * LISTEN zenrent_whatsapp_inbound gave any database login every landlord's, conversation's and
--     message's ids as messages arrived: the notification now says only "something arrived"
--     (listeners read what is theirs through RLS or the notification queue).
--   * "not found" and "not yours" already give one answer for tenants, leases, conversations and
--     held messages (tests in 50-); nothing to change here.

create or replace trigger tenants_normalize_phone before insert or update on public.tenants
  for each row execute function private.trg_normalize_tenant_phone();

create or replace function private.trg_notify_landlord()
returns trigger
language plpgsql
security definer -- writes the private notification queue
set search_path = ''
as $$
begin
  if (select up.whatsapp_notifications_enabled from public.user_profiles up where up.id = new.landlord_id) then
    insert into private.landlord_notifications (landlord_id, conversation_id, message_id)
    values (new.landlord_id, new.conversation_id, new.id);
    -- NOTIFY takes a database-wide lock from pre-commit until the commit is flushed: every
    -- notifying transaction commits alone (docs/benchmarks.md). The payload names nothing.
    if (select s.notify_listeners from private.whatsapp_settings s) then
      perform pg_notify('zenrent_whatsapp_inbound', '');
    end if;
  end if;
  return null;
end
$$;
