-- Why: landlords read their own inbox but every write goes through RPCs that enforce the
-- rules (opt-in, 24 h window, opt-outs, signature). Direct INSERT/UPDATE/DELETE on messages is
-- closed; the multi-WABA history stays readable by its owner (user_id) alongside the new
-- routed messages (landlord_id). routing_metadata names every candidate landlord of a shared
-- phone, so landlords get no column privilege on it: they must not learn that another landlord
-- has a lease with their tenant. Both inbox tables stream through supabase_realtime under RLS.

drop policy "landlords can add messages" on public.whatsapp_messages;
drop policy "landlords can update their messages" on public.whatsapp_messages;
drop policy "landlords can delete their messages" on public.whatsapp_messages;
drop policy "landlords can read their messages" on public.whatsapp_messages;

revoke all on public.whatsapp_messages from authenticated;
grant select (id, user_id, landlord_id, tenant_id, property_id, conversation_id, wamid, direction, is_from_tenant,
              type, body, landlord_signature, media_id, media_mime_type, media_sha256, media_caption, media_filename,
              reply_to_wamid, reply_to_message_id, contact_name, routing_status, status, outbound_kind, template,
              sent_at, delivered_at, read_at, failed_at, error_code, error_title, tenant_phone, from_phone, to_phone,
              waba_id, created_at, updated_at)
  on public.whatsapp_messages to authenticated;

create index whatsapp_messages_user_id_idx on public.whatsapp_messages (user_id);

create policy "landlords can read their messages" on public.whatsapp_messages
  for select to authenticated
  using (landlord_id = (select auth.uid()) or user_id = (select auth.uid()));

-- Profiles: landlords may create their own row and edit their contact details; WhatsApp
-- opt-in goes through public.set_whatsapp_opt_in().
revoke insert on public.user_profiles from authenticated;
grant insert (id, full_name, email, phone) on public.user_profiles to authenticated;

-- Functions in private are callable by API roles only when granted one by one. PostgreSQL gives
-- every new function EXECUTE to PUBLIC, and the per-schema `alter default privileges in schema
-- private revoke ...` of 20261125090000 cannot take away that global default, so until here every
-- private function (security definer ones such as routing_sync_tenant() and is_opted_out()
-- included) was executable by any signed-in user. Close them all; the explicit grants that
-- policies and invoker triggers need (owns_property, owns_tenant, normalize_phone,
-- default_country) stay. Private functions created later revoke PUBLIC right after creation.
revoke execute on all functions in schema private from public;
revoke execute on function private.is_opted_out(text) from authenticated;

-- Live inbox.
alter publication supabase_realtime add table public.whatsapp_messages, public.whatsapp_conversations;
