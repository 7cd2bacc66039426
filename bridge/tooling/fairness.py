"""``coursegen simulate --mixed``: one big tenant and many small ones on a virtual clock, and
how long each tenant's courses wait to start, against the same small tenants alone.

Each run goes through the real runtime (bridge, admission, local queues with their rate and
concurrency limits, endpoint, memory store) with steps that take half a virtual second. A
course's time to start is from its ``CourseRequested`` to its first ``TaskStarted``. The
small tenants' p95 in the mixed run is compared with their p95 on an otherwise empty system
(the target: within 2x); the same mixed run without tenant limits (first come, first served)
is reported beside it, to show what the fair shares buy.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.simulate import QUIET_S, RECONCILE_EVERY_S, Chaos, Faults
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore
from statemachine.timefmt import parse_iso

# Fair shares for the simulation: at most 5 active courses a tenant, 60 in all (room for
# every tenant's share: a tenant that arrives when the total is full waits for a course to end,
# however fair the order of those waiting).
DEFAULT_LIMITS = {"default": {"maxActive": 5}, "maxActiveTotal": 60}
TARGET_RATIO = 2.0
BIG = "big"


def workload(big: int, small_tenants: int, small_courses: int) -> list[tuple[str, int]]:
    """(tenant, n) for every course, in the order they are requested: the big tenant's all
    first (it floods the system), then each small tenant's."""
    courses = [(BIG, i) for i in range(big)]
    for s in range(small_tenants):
        courses += [(f"small-{s:02d}", i) for i in range(small_courses)]
    return courses


def run(
    courses: Sequence[tuple[str, int]],
    limits: Mapping[str, Any] | None,
    data_dir: Path,
    *,
    max_virtual_s: float = 7 * 24 * 3600.0,
) -> dict[str, list[float]]:
    """Run ``courses`` to the end; each tenant's times to start, in virtual seconds."""
    clock = VirtualClock()
    pipeline = default_pipeline()
    steps = Chaos(Faults(), pipeline, clock).steps()  # no faults: every step takes 0.5 s
    env = {"COURSEGEN_STORE": "memory"}
    if limits:
        env["COURSEGEN_TENANT_LIMITS"] = json.dumps(limits)
    rt = embedded(
        data_dir,
        settings=Settings.from_env(env),
        steps=steps,
        clock=clock,
        store=MemoryStore(),
        dispatch_follow_ups=False,  # as in the cloud: the bridge dispatches on notification
    )
    try:
        ids = [
            (tenant, rt.bridge.ingest(_request(tenant, n), message_id=f"mixed-{tenant}-{n}"))
            for tenant, n in courses
        ]
        start = clock.now()
        while clock.now() - start < max_virtual_s:
            horizon = clock.now() + RECONCILE_EVERY_S
            rt.dispatcher.run_until_idle(until=horizon)
            clock.advance_to(horizon)
            rt.bridge.reconcile(QUIET_S)
            if rt.dispatcher.pending() == 0 and not rt.store.quiet("9999", limit=1):
                break
        waits: dict[str, list[float]] = {}
        for tenant, course_id in ids:
            waits.setdefault(tenant, []).append(_time_to_start(rt.store.load(course_id)))
        return waits
    finally:
        rt.close()


def _request(tenant: str, n: int) -> dict[str, Any]:
    return {"videoUri": f"gs://sim/{tenant}/{n}.mp4", "title": f"{tenant} {n}", "tenant": tenant}


def _time_to_start(events: Sequence[Any]) -> float:
    requested = parse_iso(events[0].occurred_at)
    started = next((e for e in events if e.type == "TaskStarted"), None)
    if started is None:
        return float("inf")  # never started (the run hit its virtual time limit)
    return parse_iso(started.occurred_at) - requested


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), math.ceil(round(q * len(ordered), 9))))
    return ordered[rank - 1]


def _summary(waits: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    return {
        tenant: {
            "courses": len(w),
            "p50_s": round(percentile(w, 0.50), 2),
            "p95_s": round(percentile(w, 0.95), 2),
        }
        for tenant, w in sorted(waits.items())
    }


def _small(waits: Mapping[str, Sequence[float]]) -> list[float]:
    return [w for tenant, ws in waits.items() if tenant != BIG for w in ws]


def simulate_mixed(
    data_dir: Path,
    *,
    big: int = 500,
    small_tenants: int = 10,
    small_courses: int = 5,
    limits: Mapping[str, Any] | None = None,
    compare_first_come: bool = True,
) -> dict[str, Any]:
    """The mixed workload with fair shares, the small tenants alone, and (if
    ``compare_first_come``) the mixed workload without limits; the report."""
    wall0 = time.perf_counter()
    shares = dict(limits or DEFAULT_LIMITS)
    mixed = workload(big, small_tenants, small_courses)
    alone = workload(0, small_tenants, small_courses)
    fair = run(mixed, shares, data_dir / "fair")
    empty = run(alone, shares, data_dir / "empty")
    small_p95 = percentile(_small(fair), 0.95)
    empty_p95 = percentile(_small(empty), 0.95)
    ratio = small_p95 / empty_p95 if empty_p95 > 0 else (1.0 if small_p95 == 0 else float("inf"))
    report: dict[str, Any] = {
        "workload": {"big": big, "small_tenants": small_tenants, "small_courses": small_courses},
        "limits": shares,
        "time_to_start": _summary(fair),
        "small_tenants": {
            "mixed_p50_s": round(percentile(_small(fair), 0.50), 2),
            "mixed_p95_s": round(small_p95, 2),
            "empty_system_p50_s": round(percentile(_small(empty), 0.50), 2),
            "empty_system_p95_s": round(empty_p95, 2),
            "p95_ratio": round(ratio, 2),
            "target_ratio": TARGET_RATIO,
        },
        "ok": ratio <= TARGET_RATIO,
    }
    if compare_first_come:
        first_come = run(mixed, None, data_dir / "first-come")
        report["first_come"] = {
            "small_p95_s": round(percentile(_small(first_come), 0.95), 2),
            "big_p95_s": round(percentile(first_come.get(BIG, []), 0.95), 2),
        }
    report["wall_s"] = round(time.perf_counter() - wall0, 2)
    return report
