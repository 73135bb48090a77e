#!/usr/bin/env bash
# PostGIS for the catalogue's footprints on the machine's PostgreSQL (run as root). Migration
# 0009 creates the extension in each catalogue database; the server needs the package.
# Idempotent: nothing happens when PostGIS is already there or no local PostgreSQL is.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "no local PostgreSQL server: nothing to install PostGIS into" >&2
    exit 0
fi
missing=()
for dir in /usr/lib/postgresql/*/; do
    version=$(basename "$dir")
    if [ ! -e "/usr/share/postgresql/$version/extension/postgis.control" ]; then
        missing+=("postgresql-$version-postgis-3")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
