"""Fair shares through the embedded runtime as ``coursegen serve`` runs it: SQLite with fsync,
worker threads on the real clock, the reconciler loop; every limit holds at every admission."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.pipeline import default_pipeline
from statemachine.timefmt import parse_iso

LIMITS = {"tenants": {"acme": {"maxActive": 2}}, "maxActiveTotal": 3}


@pytest.mark.slow
def test_concurrent_courses_of_several_tenants_stay_within_every_limit(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "COURSEGEN_STORE": "sqlite",
            "COURSEGEN_TASK_SECRET": "tenants",
            "COURSEGEN_TENANT_LIMITS": json.dumps(LIMITS),
            "COURSEGEN_RECONCILE_QUIET_SECONDS": "1",
        }
    )
    rt = embedded(tmp_path, settings=settings, steps=noop_steps(default_pipeline()))
    # the queues' rate limits would only make it slow: lifted, as `coursegen bench` does
    queues = {
        n: replace(q, max_dispatches_per_s=1e9, max_concurrent=10_000)
        for n, q in rt.pipeline.queues.items()
    }
    rt.dispatcher.set_limits(replace(rt.pipeline, queues=queues))
    rt.start(workers=4)
    try:
        tenants = ["acme"] * 6 + ["globex"] * 3 + ["initech"] * 3
        ids = {
            rt.bridge.ingest(
                {"videoUri": f"gs://t/{i}.mp4", "title": f"{t} {i}", "tenant": t},
                message_id=f"tenants-{i}",
            ): t
            for i, t in enumerate(tenants)
        }
        # Pub/Sub delivers some requests again meanwhile: nothing is admitted twice
        for i, t in enumerate(tenants[:4]):
            rt.bridge.ingest(
                {"videoUri": f"gs://t/{i}.mp4", "title": f"{t} {i}", "tenant": t},
                message_id=f"tenants-{i}",
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            heads = [rt.store.head(c) for c in ids]
            if all(h is not None and h.status == "completed" for h in heads):
                break
            time.sleep(0.05)
    finally:
        rt.close()
    spans: dict[str, tuple[float, float, str]] = {}
    queued = 0
    for course_id, tenant in ids.items():
        events = rt.store.load(course_id)
        kinds = [e.type for e in events]
        assert kinds[-1] == "CourseCompleted", f"{course_id} ended {kinds[-1]}"
        assert kinds.count("CourseAdmitted") == kinds.count("CourseQueued") <= 1
        queued += kinds.count("CourseQueued")
        begin = next(e for e in events if e.type in ("CourseAdmitted", "TaskScheduled"))
        spans[course_id] = (parse_iso(begin.occurred_at), parse_iso(events[-1].occurred_at), tenant)
    assert queued >= 12 - LIMITS["maxActiveTotal"]  # the others waited their turn
    for start, _, _ in spans.values():  # at every admission, count who was active then
        active = [t for s, e, t in spans.values() if s <= start < e]
        assert len(active) <= LIMITS["maxActiveTotal"]
        assert active.count("acme") <= 2
