# shellcheck shell=bash
# Shared settings for every script in scripts/. Sourced, never run.
# Everything a script needs is derived from these few variables, each overridable from the environment.

set -euo pipefail

ZR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ZR_ROOT

# The local cluster: one per port, its data directory somewhere the `postgres` OS user can reach
# whatever folder the checkout sits in (CI clones into root-only folders made by `mktemp -d`).
export ZR_DB_PORT="${ZR_DB_PORT:-54322}"
export ZR_DB_DIR="${ZR_DB_DIR:-/var/lib/postgresql/zenrent/${ZR_DB_PORT}}"
export ZR_DB_NAME="${ZR_DB_NAME:-postgres}"
export ZR_PG_BIN="${ZR_PG_BIN:-/usr/lib/postgresql/15/bin}"
# The same default as Python's app.config.default_database_url(): keep the two in step.
export DATABASE_URL="${DATABASE_URL:-postgresql://postgres:postgres@127.0.0.1:${ZR_DB_PORT}/${ZR_DB_NAME}?sslmode=disable}"
# The platform's own superuser, as on hosted Supabase where `postgres` is not one. Used only to
# bootstrap: initdb, recreating the database, supabase/local/platform.sql (scripts/db), and the
# harnesses that bootstrap scratch databases. Everything else connects as postgres.
export ZR_DB_ADMIN_PASSWORD="${ZR_DB_ADMIN_PASSWORD:-postgres}"
export ZR_DB_ADMIN_URL="${ZR_DB_ADMIN_URL:-postgresql://supabase_admin:${ZR_DB_ADMIN_PASSWORD}@127.0.0.1:${ZR_DB_PORT}/${ZR_DB_NAME}?sslmode=disable}"

export ZR_VENV="${ZR_VENV:-${ZR_ROOT}/.venv}"
export PATH="${ZR_ROOT}/node_modules/.bin:${ZR_PG_BIN}:${PATH}"

# Local development only: the services run with their built-in, public local secrets
# (app/config.py; anything but ZR_ENV=development refuses them). Called by the local scripts
# (run, test, dev-token, dataapi, send-webhook), never here for every script: a deploy
# (e.g. scripts/migrate-history against the hosted project) must not inherit it.
use_development_secrets() {
  export ZR_ENV="${ZR_ENV:-development}"
}

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Run a command as the OS user that owns the cluster. Postgres refuses to run as root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# psql against the project database as postgres (not a superuser), stopping at the first error.
zr_psql() {
  PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"
}
