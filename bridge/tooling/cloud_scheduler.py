"""The reconcile job of terraform/modules/scheduler on one machine: POST the bridge's
/reconcile on a fixed period, one retry on failure, each answer logged as a JSON line.

    python -m bridge.tooling.cloud_scheduler --url http://127.0.0.1:P/reconcile --every 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from bridge.tooling.cloud_topology import RECONCILE_BODY

ATTEMPT_DEADLINE_S = 300.0  # modules/scheduler var.attempt_deadline_seconds
RETRY_AFTER_S = 10.0  # modules/scheduler retry_config: retry_count 1, min_backoff 10s


def attempt(url: str, deadline_s: float) -> dict[str, Any]:
    """One call of the job: its status and body, or the error."""
    try:
        answer = requests.post(url, json=RECONCILE_BODY, timeout=deadline_s)
    except requests.RequestException as err:
        return {"status": None, "error": f"{type(err).__name__}: {err}"[:300]}
    try:
        body: Any = answer.json()
    except ValueError:
        body = answer.text[:300]
    return {"status": answer.status_code, "body": body}


def run(url: str, every_s: float, deadline_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        result = attempt(url, deadline_s)
        if result["status"] != 200 and not stop.wait(min(RETRY_AFTER_S, every_s)):
            result = attempt(url, deadline_s) | {"retried": True}
        print(json.dumps({"at": time.time(), **result}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--every", type=float, required=True, help="seconds between runs")
    parser.add_argument("--deadline", type=float, default=ATTEMPT_DEADLINE_S)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"at": time.time(), "started": args.url, "every": args.every}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        run(args.url, args.every, args.deadline, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
