#!/usr/bin/env bash
# The browser of the UI tests and benchmark: Debian's `chromium`, driven by Playwright from PyPI
# (Playwright's own browser download is not used).
#
#   scripts/chromium.sh install   install the Debian chromium package when /usr/bin/chromium is
#                                 missing (as root, with apt-get); otherwise only says what is
#                                 missing. Never fails the caller: the UI tests then fail, naming it.
set -euo pipefail

case "${1:-}" in
install)
    if [ -x /usr/bin/chromium ]; then
        exit 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "chromium.sh: /usr/bin/chromium not found; installing the Debian chromium package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq chromium >&2 || echo "chromium.sh: installing chromium failed" >&2
    else
        echo "chromium.sh: no /usr/bin/chromium here; install the chromium package to run the UI tests" >&2
    fi
    exit 0
    ;;
*)
    echo "usage: scripts/chromium.sh install" >&2
    exit 2
    ;;
esac
