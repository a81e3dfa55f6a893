#!/usr/bin/env bash
# Installs the real backends the integration tests talk to (idempotent: a
# second run only checks). Each installer prints one line per step.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for installer in install_phoenix.sh install_stack.sh install_browser.sh; do
    if [ -f "$here/$installer" ]; then
        bash "$here/$installer"
    fi
done
