#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser) when it is missing and can be
# installed; Playwright drives it, so no browser is ever downloaded. This never fails CI: when
# Chromium cannot be installed it says why, and the browser tests skip with that reason.
set -u
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
say() { echo "browser-setup: $*"; }

works() { "$CHROMIUM" --version >/dev/null 2>&1; }

if works; then
    say "$("$CHROMIUM" --version 2>/dev/null) is at $CHROMIUM"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "no Chromium at $CHROMIUM and no apt-get here; install Chromium (or set CHROMIUM)" \
        "to run the browser tests, which will be skipped"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        say "cannot install Chromium: not root and no password-less sudo; browser tests will be skipped"
        exit 0
    fi
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
say "installing Debian's chromium package..."
if ! $SUDO apt-get update -q >"$log" 2>&1; then
    say "apt-get update failed (offline?); browser tests will be skipped. Last lines:"
    tail -n 5 "$log"
    exit 0
fi
if ! $SUDO apt-get install -y -q chromium >"$log" 2>&1; then
    say "apt-get install chromium failed; browser tests will be skipped. Last lines:"
    tail -n 5 "$log"
    exit 0
fi
if works; then
    say "installed $("$CHROMIUM" --version 2>/dev/null) at $CHROMIUM"
else
    # e.g. Ubuntu, whose chromium package only points at a snap that containers cannot run
    say "the chromium package installed, but $CHROMIUM does not run; browser tests will be skipped"
fi
exit 0
