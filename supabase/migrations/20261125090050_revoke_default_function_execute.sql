-- Why: functions must not be executable by anyone unless granted one by one. PostgreSQL grants
-- EXECUTE to PUBLIC on every new function, and a per-schema default (as in the previous
-- migration) cannot take that away: only the global default of the role that creates them can.
-- Without this, any signed-in user could call every private helper, security definer ones too.

alter default privileges revoke execute on functions from public;
