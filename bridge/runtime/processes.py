"""Running the embedded runtime as a worker (``coursegen work``), and how many cores there are
for several of them (``--processes``; ``bridge/partition.py``, ``bridge/cli/work.py``)."""

from __future__ import annotations

import os
import time
from typing import Any

from statemachine.lifecycle import ACTIVE_COURSE


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def run_worker(
    rt: Any,
    *,
    until_idle: bool,
    workers: int = 4,
    poll_s: float = 0.2,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Recover, then run every transport and the reconciler loop (``Runtime.start``); return
    when idle (``until_idle``), or run until interrupted."""
    recovered = rt.bridge.recover()
    rt.start(workers)
    started = time.monotonic()
    while timeout_s is None or time.monotonic() - started < timeout_s:
        time.sleep(poll_s)
        if until_idle and (rt.pending() == 0 or not _active(rt.store)):
            break
    counts: dict[str, int] = {}
    for head in rt.store.courses():
        counts[head.status] = counts.get(head.status, 0) + 1
    return {"recovered": recovered, "courses": counts, "wall_s": round(time.monotonic() - started)}


def _active(store: Any) -> bool:
    return any(h.status in ACTIVE_COURSE for h in store.courses())
