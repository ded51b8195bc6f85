-- Benchmark partitioning, part 2: one layout of the messages table in schema :layout, with the
-- columns, defaults and generated column of public.whatsapp_messages (its CHECK constraints and
-- indexes come after the load, bench/benchmarks/partitioning.py).
--   :partitioned false  one table, as today;
--   :partitioned true   partitioned by range (created_at), a partition per calendar month (UTC) from
--                       the history's first month to three months ahead (pg_partman's premake),
--                       named as pg_partman 5 names them (messages_pYYYYMMDD), no default
--                       partition (DETACH ... CONCURRENTLY refuses a table that has one), and
--                       message_keys: the wamid -> message map of the `keyed` insert variant.
-- Autovacuum is off on these tables so it cannot run into a measurement; the benchmark vacuums
-- after the load and measures the VACUUM that a DELETE needs. The two text keys, wamid and
-- tenant_phone, compare with COLLATE "C" in both layouts: the cluster's C.UTF-8 sorts them with
-- strcoll() and no abbreviated keys, which made building their 100M-row indexes take longer than
-- the whole benchmark may (both are opaque identifiers, only ever compared for equality and
-- prefix order, so "C" would suit the real table as well).

\set ON_ERROR_STOP 1
set client_min_messages = warning;

create schema :"layout";

\if :partitioned
create table :"layout".messages (like public.whatsapp_messages including defaults including generated)
partition by range (created_at);
alter table :"layout".messages alter column wamid type text collate "C", alter column tenant_phone type text collate "C";

select format('create table %I.%I partition of %I.messages for values from (%L) to (%L) with (autovacuum_enabled = false)',
              :'layout', 'messages_p' || to_char(m, 'YYYYMMDD'), :'layout', m, m + interval '1 month')
from bench.params p,
     generate_series(p.value::timestamptz,
                     date_trunc('month', (select value::timestamptz from bench.params where name = 'stop')) + interval '3 months',
                     interval '1 month') m
where p.name = 'start'
\gexec

-- Its primary key (wamid) is added after the fill.
create table :"layout".message_keys (
  wamid text collate "C" not null,
  message_id uuid not null,
  created_at timestamptz not null
) with (autovacuum_enabled = false);
\else
create table :"layout".messages (like public.whatsapp_messages including defaults including generated)
with (autovacuum_enabled = false);
alter table :"layout".messages alter column wamid type text collate "C", alter column tenant_phone type text collate "C";
\endif
