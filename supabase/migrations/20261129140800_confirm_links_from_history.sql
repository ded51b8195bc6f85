-- Why: a tenant who wrote to a landlord's own WhatsApp Business Account before the move has
-- shown who their landlord is: when the backfill files such an incoming history message with
-- its landlord, that (landlord, phone) link is confirmed ('history'), unless the tenant has
-- declined the landlord since. A trigger does it, so the backfill function stays as it is; it
-- fires only for history rows (user_id set) when they are first filed.

create function private.trg_confirm_history_link()
returns trigger
language plpgsql
security definer -- writes links on behalf of the backfill
set search_path = ''
as $$
begin
  perform private.set_link_state(new.landlord_id, new.tenant_phone, 'confirmed', 'history');
  return null;
end
$$;
comment on function private.trg_confirm_history_link() is 'Trigger: a filed incoming history message confirms its (landlord, phone) link.';

create trigger whatsapp_messages_confirm_history_link after update of landlord_id on public.whatsapp_messages
  for each row when (old.landlord_id is null and new.landlord_id is not null and new.user_id is not null
                     and new.direction = 'incoming' and new.tenant_phone is not null)
  execute function private.trg_confirm_history_link();

-- Data step: history filed before this migration.
select private.set_link_state(x.landlord_id, x.tenant_phone, 'confirmed', 'history')
from (select distinct m.landlord_id, m.tenant_phone from public.whatsapp_messages m
      where m.user_id is not null and m.direction = 'incoming' and m.landlord_id is not null and m.tenant_phone is not null) x;
