#!/usr/bin/env bash
# Installs what the window test (tests/test_window.py) needs, once, at set-up time: Debian's Xvfb (a real X
# server without a screen) and xdotool (sends keys and finds windows). `make test` runs it.
set -euo pipefail
missing=()
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v xdotool >/dev/null 2>&1 || missing+=(xdotool)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup_gui: installing Debian's ${missing[*]} (apt-get)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup_gui: missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
fi
echo "setup_gui: ok ($(command -v Xvfb); $(command -v xdotool))"
