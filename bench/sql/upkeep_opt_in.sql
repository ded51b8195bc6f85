-- pgbench (-M prepared; -D lo=L -D hi=H): a landlord numbered L..H turns WhatsApp on or off
-- (small landlords have about 10 tenants, agencies about 1,000).
\set l random(:lo, :hi)
update public.user_profiles
set whatsapp_enabled = not whatsapp_enabled, whatsapp_opted_in_at = coalesce(whatsapp_opted_in_at, now())
where id = bench.uid(1, :l);
