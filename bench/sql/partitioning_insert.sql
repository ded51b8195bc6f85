-- pgbench (-M prepared; -D variant=locked|bounded|keyed -D conversations=N -D tenants=N -D narrow=B):
-- store one message of the current month in the layout of the connection's search_path, with
-- exactly-once the way the variant says (bench.store_message in bench/sql/partitioning_setup.sql).
\set h random(0, 1099511627775)
\set u random(0, 999999)
\set d random(1, 100)
select bench.store_message(:h, :u, :d, :variant, :conversations, :tenants, :narrow);
