-- pgbench (-M prepared; -D samples=N): one message by wamid (a status update from Meta, a reply's
-- context), in the layout of the connection's search_path.
\set k random(1, :samples)
select wamid from bench.samples where k = :k \gset
-- measured query
select id, direction, status
from messages
where wamid = :wamid;
