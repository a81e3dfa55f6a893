#!/usr/bin/env bash
# Installs Debian's chromium for the run viewer's browser tests (tests/view).
# Playwright drives it through the driver bundled in its PyPI wheel: no
# browser is ever downloaded by Playwright. Idempotent: a second run only checks.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: apt-get not available; install Debian's chromium package by hand" >&2
    exit 1
fi
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
echo "chromium: installing the Debian package"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
