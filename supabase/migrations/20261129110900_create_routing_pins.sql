-- Why: when support staff resolve an ambiguous message they can pin the phone to a landlord for
-- a while, so that the tenant's next messages route there without ambiguity. A pin only ever
-- chooses among the phone's current candidates: it ends when it expires or when the pinned
-- landlord no longer has an active lease for the phone. Written by public.assign_held_message().

create table private.routing_pins (
  phone text primary key check (phone ~ '^[1-9][0-9]{7,14}$'),
  landlord_id uuid not null references public.user_profiles (id) on delete cascade,
  expires_at timestamptz not null,
  created_by uuid,
  reason text,
  created_at timestamptz not null default now()
);
comment on table private.routing_pins is 'Support-set routing pins: phone -> landlord until expires_at (among current candidates only).';
create index routing_pins_landlord_id_idx on private.routing_pins (landlord_id);
alter table private.routing_pins enable row level security;
revoke all on private.routing_pins from public, anon, authenticated, service_role;
