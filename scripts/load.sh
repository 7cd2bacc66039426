#!/usr/bin/env bash
# Reproduce the load figures: the task endpoint under gunicorn on 127.0.0.1, driven by wrk
# (apt-get install wrk; a Python client otherwise) for DURATION seconds, then every history
# audited. Usage: scripts/load.sh [COURSES] [DURATION]   (defaults 4000 and 15)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m tests.reliability.load --courses "${1:-4000}" --duration "${2:-15}"
