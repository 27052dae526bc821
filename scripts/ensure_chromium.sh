#!/bin/sh
# Debian's chromium for the report's browser test (tests/test_report.py), installed by `make test` when missing.
# Never fails: without root or apt-get, or when the install fails (offline), it says so in one line and the browser
# test skips with its own message.
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: $CHROMIUM missing and apt-get is not usable as root here; the report's browser test will skip"
  exit 0
fi
log="$(mktemp "${TMPDIR:-/tmp}/ensure_chromium.XXXXXX")" || log=/dev/null
echo "ensure_chromium: installing Debian's chromium for the report's browser test (log: $log)"
export DEBIAN_FRONTEND=noninteractive
# the package lists may be stale or absent (fresh containers): refresh them only when the first try fails
if apt-get install -y -q chromium >"$log" 2>&1 \
   || { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q chromium >>"$log" 2>&1; }; then
  echo "ensure_chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
  echo "ensure_chromium: apt-get could not install chromium (see $log); the report's browser test will skip"
fi
exit 0
