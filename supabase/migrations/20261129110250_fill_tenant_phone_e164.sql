-- Why (data step): existing tenants get their normalized phone. Their updated_at stays as it
-- was: filling a derived column is not an edit by the landlord.

alter table public.tenants disable trigger tenants_set_updated_at;
update public.tenants set phone_e164 = private.normalize_phone(phone, private.default_country()) where phone is not null;
alter table public.tenants enable trigger tenants_set_updated_at;
