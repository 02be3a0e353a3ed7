#!/usr/bin/env bash
# Prove a dump restores: restore it into a scratch database, run verify_schema against it, drop it.
#   deploy/restore-check.sh /var/backups/dm-agent/dm-agent-20261201T030000Z.dump
# Reads DATABASE_URL for the server to use (the scratch database is created beside the live one, named
# <name>_restore_check). Exits non-zero when the restore or the schema check fails.
set -euo pipefail
dump="${1:?usage: deploy/restore-check.sh DUMP_FILE}"
: "${DATABASE_URL:?set DATABASE_URL}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
base="${DATABASE_URL%/*}"
name="${DATABASE_URL##*/}"; name="${name%%\?*}"
scratch="${name}_restore_check"
admin_url="$base/postgres"
psql -q -v ON_ERROR_STOP=1 "$admin_url" -c "DROP DATABASE IF EXISTS \"$scratch\"" -c "CREATE DATABASE \"$scratch\""
trap 'psql -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$scratch\"" >/dev/null 2>&1 || true' EXIT
pg_restore --no-owner --no-privileges --exit-on-error --dbname="$base/$scratch" "$dump"
DATABASE_URL="$base/$scratch" DJANGO_DEBUG=1 "$PY" manage.py verify_schema
echo "restore check passed: $dump"
