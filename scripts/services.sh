#!/usr/bin/env bash
# Source me: installs (if missing) and starts what the test suite needs, PostgreSQL and Redis on
# loopback (their URLs exported), a CJK font for the renderer's tests and Chromium for the
# console's. Idempotent and quick when all is already there.
set -euo pipefail

_apt_updated=""
_apt_install() {
  if [ -z "$_apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "services: installing PostgreSQL" >&2
  _apt_install postgresql
fi
read -r PG_VERSION PG_CLUSTER _ < <(pg_lsclusters --no-header | head -n 1) || true
if [ -z "${PG_VERSION:-}" ]; then
  PG_VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  PG_CLUSTER=main
  pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >/dev/null
fi
if ! pg_lsclusters --no-header | grep -q "^$PG_VERSION *$PG_CLUSTER .*online"; then
  pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
fi
PG_PORT=$(pg_lsclusters --no-header | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $3}')
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 0.5
done
# The suite's own role and database (it creates a database per test, hence CREATEDB); nothing
# else on the cluster is touched, the postgres superuser's password included.
su postgres -c "psql -q -p $PG_PORT -v ON_ERROR_STOP=1" >/dev/null <<'SQL'
SELECT 'CREATE ROLE vidrelay_test LOGIN CREATEDB PASSWORD ''vidrelay_test'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vidrelay_test') \gexec
SELECT 'CREATE DATABASE vidrelay_test OWNER vidrelay_test'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'vidrelay_test') \gexec
-- dropping a test database WITH (FORCE) may have to end an autovacuum worker in it
SELECT 'GRANT pg_signal_backend TO vidrelay_test'
WHERE NOT pg_has_role('vidrelay_test', 'pg_signal_backend', 'MEMBER') \gexec
SQL

if ! command -v redis-server >/dev/null 2>&1; then
  echo "services: installing Redis" >&2
  _apt_install redis-server
fi
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 1 40); do
    redis-cli -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.25
  done
fi

if [ ! -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
  echo "services: installing a CJK font" >&2
  _apt_install fonts-wqy-zenhei
fi

# The web console's browser tests drive Debian's Chromium with Playwright (no browser download).
if [ ! -x /usr/bin/chromium ]; then
  echo "services: installing Chromium" >&2
  _apt_install chromium
fi

export VIDRELAY_TEST_POSTGRES_URL="postgresql+asyncpg://vidrelay_test:vidrelay_test@127.0.0.1:${PG_PORT}/vidrelay_test"
export VIDRELAY_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
