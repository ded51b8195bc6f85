-- Why: two things about a message are for ZenRent, never for landlords: the routing decision
-- (routing_metadata: the rule applied and every candidate landlord considered — on a shared phone
-- that names the other landlords) and the raw message element exactly as Meta sent it. They live
-- here, in private, keyed by message id, so that landlords can `select *` from whatsapp_messages
-- and no privilege, policy or client forgetting a column can leak them. RPCs and the support
-- console read them through security definer functions.

create table private.whatsapp_message_details (
  message_id uuid primary key references public.whatsapp_messages (id) on delete cascade,
  routing_metadata jsonb not null default '{}' check (jsonb_typeof(routing_metadata) = 'object'),
  raw jsonb
);
comment on table private.whatsapp_message_details is
  'Per message, what landlords must not see: the routing decision (candidates, rule, support actions) and Meta''s raw element.';
comment on column private.whatsapp_message_details.routing_metadata is 'Why: candidates considered, the rule applied, later actions (assigned, dismissed, ...).';
comment on column private.whatsapp_message_details.raw is 'The message element exactly as Meta sent it (inbound messages of the central number).';
alter table private.whatsapp_message_details enable row level security;
revoke all on private.whatsapp_message_details from public, anon, authenticated, service_role;

-- Merge keys into a message's routing metadata (creating the row when the message has none yet).
create function private.add_routing_metadata(message_id uuid, patch jsonb)
returns void
language plpgsql
security invoker
set search_path = ''
as $$
begin
  insert into private.whatsapp_message_details as d (message_id, routing_metadata)
  values (add_routing_metadata.message_id, jsonb_strip_nulls(patch))
  on conflict on constraint whatsapp_message_details_pkey do update set routing_metadata = d.routing_metadata || excluded.routing_metadata;
end
$$;
comment on function private.add_routing_metadata(uuid, jsonb) is 'Merge keys (nulls dropped) into a message''s routing metadata.';
