#!/usr/bin/env bash
# Run a command beside the optional local model's server, both inside a fresh network namespace
# whose only interface is loopback: the server (llama-cpp-python's OpenAI-compatible
# llama_cpp.server) cannot reach anything off this machine, and the command talks to it on
# 127.0.0.1 with COURSEGEN_PROVIDER=local. Needs root (unshare -n). docs/ai.md "Local model".
#
#   scripts/local_model.sh MODEL.gguf -- coursegen run samples/lecture.mp4
#
# Environment: LLAMA_PYTHON (the python of the venv holding llama-cpp-python[server];
# default .venv-llm/bin/python), LOCAL_MODEL_PORT (8080), LOCAL_MODEL_ALIAS
# (qwen2.5-coder-0.5b-instruct-q4_k_m), LOCAL_MODEL_THREADS (1), LOCAL_MODEL_CTX (4096),
# LOCAL_MODEL_LOG (where the server's output goes; default a file in a temporary folder).
# Threads default to 1: llama.cpp's OpenMP threads spin-wait, and on cores other work shares
# (measured here, load 7-9 on 2 cores) 2 threads ran 5x slower than 1. Idle cores: set nproc.
set -euo pipefail

if [[ $# -lt 3 || $2 != "--" ]]; then
  echo "usage: $0 MODEL.gguf -- COMMAND [ARGS...]" >&2
  exit 2
fi
model=$(realpath "$1")
shift 2
[[ -f $model ]] || { echo "$0: no model file $model (coursegen model assemble)" >&2; exit 2; }

if [[ ${_LOCAL_MODEL_INSIDE:-} != 1 ]]; then
  export _LOCAL_MODEL_INSIDE=1
  exec unshare -n -- "$0" "$model" -- "$@"
fi

python=${LLAMA_PYTHON:-.venv-llm/bin/python}
port=${LOCAL_MODEL_PORT:-8080}
alias=${LOCAL_MODEL_ALIAS:-qwen2.5-coder-0.5b-instruct-q4_k_m}
log=${LOCAL_MODEL_LOG:-$(mktemp -d)/llama-server.log}
ip link set lo up
# Nothing leaves this namespace anyway; these keep any library from even trying.
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 ANONYMIZED_TELEMETRY=False

"$python" -m llama_cpp.server --model "$model" --model_alias "$alias" \
  --host 127.0.0.1 --port "$port" --n_ctx "${LOCAL_MODEL_CTX:-4096}" \
  --n_threads "${LOCAL_MODEL_THREADS:-1}" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT

for _ in $(seq 1 240); do  # the model loads in a few seconds; give up after 2 minutes
  if curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { echo "$0: the server exited; see $log" >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null || { echo "$0: no server; $log" >&2; exit 1; }
echo "local model up on 127.0.0.1:$port (log $log)" >&2

COURSEGEN_PROVIDER=local COURSEGEN_LOCAL_MODEL_URL="http://127.0.0.1:$port/v1" \
  COURSEGEN_LOCAL_MODEL="$alias" "$@"
