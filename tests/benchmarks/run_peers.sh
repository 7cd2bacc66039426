#!/usr/bin/env bash
# Peers side by side (tests/benchmarks/peers.py) inside a loopback-only network namespace:
#   bash tests/benchmarks/run_peers.sh [--courses 300] [--replay 10000] [--engines ...]
# Installs the Restate server from package.json first if it is missing (outside the namespace:
# the only step that reaches a registry), then `unshare -n`, `ip link set lo up`, telemetry and
# update checks off, and peers.py. PYTHON picks the interpreter (default: the repo's .venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
if [ ! -x "$here/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
userns=()
[ "$(id -u)" = 0 ] || userns=(--map-root-user)  # root needs no user namespace for unshare -n
export DO_NOT_TRACK=1 RESTATE_DISABLE_TELEMETRY=true RESTATE_ADMIN__DISABLE_WEB_UI=true
export TEMPORAL_CLI_DISABLE_CONNECT_DIAGNOSIS=1
exec unshare "${userns[@]}" --net -- bash -c 'ip link set lo up && exec "$@"' peers \
  "$py" "$here/peers.py" "$@"
