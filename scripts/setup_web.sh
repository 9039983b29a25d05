#!/usr/bin/env bash
# Installs what `edgegan web` and its end-to-end test (tests/test_web.py) need, once, at set-up time:
#   - the npm packages pinned in edgegan/web/package-lock.json (onnxruntime-web, @vladmandic/face-api,
#     playwright-core) into edgegan/web/node_modules, with `npm ci`;
#   - Debian's Chromium (/usr/bin/chromium), when missing and we are root.
# Nothing is downloaded later: `edgegan web` copies from node_modules, the test drives the system Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    echo "setup_web: npm not found: install Node.js 18+ with npm (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
fi
lock=edgegan/web/package-lock.json
installed=edgegan/web/node_modules/.package-lock.json  # npm's record of what it installed
# npm ci deletes node_modules first, so skip it when the install is newer than the lock file.
if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
    npm ci --prefix edgegan/web --no-audit --no-fund --loglevel=error
fi

if [ -n "${EDGEGAN_CHROMIUM:-}" ]; then
    chromium="$EDGEGAN_CHROMIUM"
elif [ -x /usr/bin/chromium ]; then
    chromium=/usr/bin/chromium
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup_web: installing Debian's chromium (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    chromium=/usr/bin/chromium
else
    echo "setup_web: Chromium not found: run 'sudo apt-get install -y chromium' (Debian/Ubuntu), or set" \
         "EDGEGAN_CHROMIUM to a Chromium/Chrome binary; the web end-to-end test needs it" >&2
    exit 1
fi
echo "setup_web: ok (edgegan/web/node_modules; $chromium)"
