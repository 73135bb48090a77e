#!/usr/bin/env bash
# Debian's Chromium for the browser tests in tests/ui (run as root; no browser download).
# Playwright's pip wheel brings only its driver: never run `playwright install`.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium
