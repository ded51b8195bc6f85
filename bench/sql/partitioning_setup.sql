-- Benchmark partitioning (bench/benchmarks/partitioning.py), part 1, in its own scratch database:
-- the generator of message rows, the insert path pgbench measures and the samples the queries draw.
-- psql variables: :rows, :conversations, :tenants, :narrow (true: the narrow row of the 100M
-- size), :start and :stop (the history's first and last moment), :samples.
--
-- Message g (1..rows) is a pure function of g, so both layouts get identical rows and the samples
-- need no table: its conversation has rank r = 1 + floor(conversations * u^2) (u a hash of g: a few
-- conversations are thousands of messages long, most about ten, as in bench/sql/world_*.sql);
-- every 100th message (g % 100 = 50) is a held one from an unknown number; 55% of the rest are
-- inbound; sent_at = created_at spreads the history evenly from :start to :stop in g order. Ids
-- and wamids are scattered over their key space like gen_random_uuid() and Meta's wamids (so new
-- rows land all over the unique indexes, as in production), and unique by construction.
--
-- The helpers are `language sql immutable` without `set search_path` (unlike product functions)
-- so the planner inlines them into the loader: with a SET clause every row would pay a call.

\set ON_ERROR_STOP 1
set client_min_messages = warning;

create schema bench;
create table bench.params (name text primary key, value text not null);
insert into bench.params values
  ('rows', :rows), ('conversations', :conversations), ('tenants', :tenants), ('narrow', :narrow),
  ('start', :'start'), ('stop', :'stop');

-- A bijection of [0, 2^40) (an odd multiplier modulo a power of two), as 10 hex digits.
create function bench.scatter40(n bigint, multiplier bigint) returns text
language sql immutable parallel safe as $$
  select lpad(to_hex((n * multiplier) % 1099511627776), 10, '0')
$$;

-- A uuid whose first half is `high` (16 hex digits) and second half n with its top bit set (so
-- to_hex gives 16 digits: unique for distinct n). Text-built uuids cost ~0.3 us, the loader's
-- main cost per row.
create function bench.uuid_of(high text, n bigint) returns uuid
language sql immutable parallel safe as $$ select (high || to_hex(n | (-9223372036854775808)))::uuid $$;

-- Scattered like gen_random_uuid() over the whole key space (the first half is a hash).
create function bench.msg_id(g bigint) returns uuid
language sql immutable parallel safe as $$ select bench.uuid_of(lpad(to_hex(hashint8extended(g, 1)), 16, '0'), g) $$;

-- The wamid prefix (the narrow row saves the 'wamid.'), then hex digits in random order.
create function bench.wamid_prefix(narrow boolean) returns text
language sql immutable parallel safe as $$ select case when narrow then 'HBgM' else 'wamid.HBgM' end $$;

-- 'wamid.HBgM' and 32 hex digits like Meta's (full row), 'HBgM' and 10 in the narrow row.
create function bench.msg_wamid(g bigint, narrow boolean) returns text
language sql immutable parallel safe as $$
  select bench.wamid_prefix(narrow) || upper(bench.scatter40(g, 3266489917)
         || case when narrow then '' else lpad(to_hex(hashint8extended(g, 2)), 16, '0')
                                          || lpad(to_hex(hashint8extended(g, 3) & 16777215), 6, '0') end)
$$;

create function bench.msg_held(g bigint) returns boolean
language sql immutable parallel safe as $$ select g % 100 = 50 $$;

create function bench.msg_incoming(g bigint) returns boolean
language sql immutable parallel safe as $$
  select g % 100 = 50 or (hashint8extended(g, 5) & 4294967295)::float8 / 4294967296.0 < 0.55
$$;

-- The conversation rank of a uniform u in [0, 1): skewed towards the busy conversations.
create function bench.rank_of(u float8, conversations bigint) returns bigint
language sql immutable parallel safe as $$ select 1 + floor(conversations * u * u)::bigint $$;

create function bench.msg_r(g bigint, conversations bigint) returns bigint
language sql immutable parallel safe as $$
  select bench.rank_of((hashint8extended(g, 4) & 4294967295)::float8 / 4294967296.0, conversations)
$$;

-- Seconds, not a timestamptz difference: adding an interval with days converts time zones per row.
create function bench.msg_at(g bigint, rows bigint, start timestamptz, span_s float8) returns timestamptz
language sql immutable parallel safe as $$
  select start + ((g - 1)::float8 / rows * span_s) * interval '1 second'
$$;

create function bench.conv_id(r bigint) returns uuid
language sql immutable parallel safe as $$ select bench.uuid_of(lpad(to_hex(hashint8extended(r, 9)), 16, '0'), r) $$;

create function bench.tenant_id(r bigint) returns uuid
language sql immutable parallel safe as $$ select bench.uuid_of('0000000000000002', r) $$;

create function bench.property_id(r bigint) returns uuid
language sql immutable parallel safe as $$ select bench.uuid_of('0000000000000003', r) $$;

-- The landlord of conversation r: agencies (one per 2,000 tenants) hold the even ones, small
-- landlords (one per 20 tenants) the odd ones, as bench.landlord_of in bench/sql/world_base.sql.
create function bench.landlord_id(r bigint, tenants bigint) returns uuid
language sql immutable parallel safe as $$
  select bench.uuid_of('0000000000000001', case when r % 2 = 0 then 1 + (r / 2) % greatest(1, tenants / 2000)
                                                else greatest(1, tenants / 2000) + 1 + (r / 2) % greatest(1, tenants / 20) end)
$$;

create function bench.phone(r bigint) returns text
language sql immutable parallel safe as $$ select '4477' || lpad(r::text, 8, '0') $$;

create function bench.body(g bigint, narrow boolean) returns text
language sql immutable parallel safe as $$
  select case when narrow then null
              else (array['Hi, the boiler is making a strange noise again.',
                          'Rent sent this morning, thanks!',
                          'Can someone come and look at the leaking tap in the kitchen? It has been dripping since Sunday.',
                          'Ok',
                          'What day is the inspection?',
                          'The front door lock is sticking, could you send someone this week please?',
                          'Thanks, see you then',
                          'Is it ok if my sister stays for two weeks in March?'])[1 + (g % 8)::int] end
$$;

-- One message as routing stores it, in the layout of the session's search_path (`messages`,
-- `message_keys` unqualified on purpose: pgbench picks the layout with search_path), with exactly-
-- once the way the variant says:
--   locked   the advisory lock on the wamid, then a lookup by wamid (route_inbound_message today);
--   bounded  the same lookup limited to the last 35 days, so a partitioned table prunes it;
--   keyed    a wamid -> message row in message_keys first (its primary key is the guarantee).
-- h and u are pgbench's random numbers (wamid position, conversation), d in 1..100 (55% inbound).
create function bench.store_message(h bigint, u bigint, d int, variant text, conversations bigint,
                                    tenants bigint, narrow boolean)
returns uuid
language plpgsql
as $$
declare
  w text := bench.wamid_prefix(narrow) || upper(lpad(to_hex(h), 10, '0')) || 'P' || txid_current();
  r bigint := bench.rank_of(u::float8 / 1e6, conversations);
  incoming boolean := d <= 55;
  stored uuid;
begin
  if variant = 'keyed' then
    insert into message_keys as k (wamid, message_id, created_at) values (w, gen_random_uuid(), now())
    on conflict (wamid) do nothing
    returning k.message_id into stored;
    if stored is null then
      return (select k.message_id from message_keys k where k.wamid = w);
    end if;
  else
    perform pg_advisory_xact_lock(hashtextextended('whatsapp_messages.wamid:' || w, 0));
    if variant = 'bounded' then
      select m.id into stored from messages m where m.wamid = w and m.created_at > now() - interval '35 days';
    else
      select m.id into stored from messages m where m.wamid = w;
    end if;
    if found then
      return stored;
    end if;
    stored := gen_random_uuid();
  end if;
  insert into messages (id, wamid, direction, is_from_tenant, type, body, landlord_signature, from_phone, to_phone,
                        tenant_phone, contact_name, landlord_id, tenant_id, property_id, conversation_id,
                        routing_status, status, outbound_kind, sent_at, created_at, updated_at)
  values (stored, w, case when incoming then 'incoming' else 'outgoing' end, incoming, 'text', bench.body(h, narrow),
          case when not narrow and not incoming then 'From Landlord via ZenRent:' end,
          case when not narrow then case when incoming then bench.phone(r) else '447700000000' end end,
          case when not narrow then case when incoming then '447700000000' else bench.phone(r) end end,
          bench.phone(r), case when not narrow and incoming then 'Tenant' end,
          bench.landlord_id(r, tenants), bench.tenant_id(r), bench.property_id(r), bench.conv_id(r),
          case when incoming then 'delivered' else 'outbound' end, case when incoming then 'received' else 'sent' end,
          case when not incoming then 'text' end, now(), now(), now());
  return stored;
end
$$;

-- What the queries draw: messages picked at random (so busy conversations come up more often),
-- never a held one; a message is also the keyset cursor of a deep page (the 50 messages before it
-- in its conversation).
create table bench.samples (
  k int primary key,
  g bigint not null,
  conversation_id uuid not null,
  message_id uuid not null,
  wamid text not null,
  deep_at timestamptz not null,
  deep_id uuid not null
);
insert into bench.samples
select row_number() over (order by s.g), s.g, bench.conv_id(bench.msg_r(s.g, :conversations)), bench.msg_id(s.g),
       bench.msg_wamid(s.g, :narrow), bench.msg_at(s.g, :rows, :'start', extract(epoch from :'stop'::timestamptz - :'start'::timestamptz)), bench.msg_id(s.g)
from (select distinct 1 + floor(random() * :rows)::bigint as g from generate_series(1, :samples * 2)) s
where not bench.msg_held(s.g)
limit :samples;
analyze bench.samples;
