-- Why: phase 1 of the move to the central ZenRent number. Landlords opt in before any tenant
-- message is routed to them or any reply is sent in their name; notifications are separate.
-- Landlords change these columns only through public.set_whatsapp_opt_in() (which records when
-- they opted in), so their direct INSERT and UPDATE privileges narrow to the contact columns.

alter table public.user_profiles
  add column whatsapp_enabled boolean not null default false,
  add column whatsapp_opted_in_at timestamptz,
  add column whatsapp_notifications_enabled boolean not null default true,
  add constraint user_profiles_opted_in_has_time check (not whatsapp_enabled or whatsapp_opted_in_at is not null);

comment on column public.user_profiles.whatsapp_enabled is 'Landlord opted in to the central ZenRent WhatsApp number.';
comment on column public.user_profiles.whatsapp_opted_in_at is 'When the landlord last opted in.';
comment on column public.user_profiles.whatsapp_notifications_enabled is 'Notify the landlord of new inbound messages.';

revoke insert, update on public.user_profiles from authenticated;
grant insert (id, full_name, email, phone) on public.user_profiles to authenticated;
grant update (full_name, email, phone) on public.user_profiles to authenticated;
