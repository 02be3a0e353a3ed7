#!/usr/bin/env bash
# Back up the database to a custom-format dump:   deploy/backup.sh /var/backups/dm-agent
# Reads DATABASE_URL (postgres://user:pass@host:port/name). Keeps the newest $KEEP dumps (default 14).
set -euo pipefail
dest="${1:?usage: deploy/backup.sh DIRECTORY}"
: "${DATABASE_URL:?set DATABASE_URL}"
mkdir -p "$dest"
file="$dest/dm-agent-$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump --format=custom --no-owner --no-privileges --file="$file.partial" "$DATABASE_URL"
mv "$file.partial" "$file"
echo "$file"
ls -1t "$dest"/dm-agent-*.dump | tail -n +"$(( ${KEEP:-14} + 1 ))" | xargs -r rm --
