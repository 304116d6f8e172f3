#!/usr/bin/env bash
# Installs what the real-browser test needs: Debian's Chromium (Playwright drives it through
# executable_path; `playwright install` is never run) and the `browser` extra. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi
VENV=${VENV:-.venv}
"$VENV/bin/python" -m pip install --quiet -e '.[dev,browser]'
