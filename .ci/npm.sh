#!/usr/bin/env bash
# The npm packages the browser tests use (tests/browser/package.json, exact versions from
# package-lock.json): scorm-again and gift-pegjs. Idempotent: skipped when node_modules was
# installed from this very lock file. Prints nothing on success.
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"
command -v npm >/dev/null 2>&1 || { echo "npm is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.coursegen-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
log="$(mktemp)"
if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
echo "$want" >"$stamp"
