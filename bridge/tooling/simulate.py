"""``coursegen simulate``: many courses through the real runtime, with injected faults, on a
virtual clock, then a check of every invariant the runtime promises."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.dispatch import TaskRequest
from bridge.dispatch.local import Delivered
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from handlers.registry import PermanentStepError, StepContext, StepFn, StepResult
from handlers.registry import TransientStepError as Transient
from statemachine.audit import verify
from statemachine.errors import IntegrityError
from statemachine.lifecycle import CourseStatus, TaskStatus
from statemachine.pipeline import Pipeline, default_pipeline
from statemachine.store.memory import MemoryStore

RECONCILE_EVERY_S = 60.0
QUIET_S = 120.0


@dataclass(frozen=True)
class Faults:
    seed: int = 7
    fail_rate: float = 0.0  # a step raises a transient error
    permanent_rate: float = 0.0  # a step raises a permanent error
    duplicate_rate: float = 0.0  # a delivery arrives twice
    drop_notify_rate: float = 0.0  # the bridge never hears of a result
    slow_rate: float = 0.0  # a step runs past its dispatch deadline


class Chaos:
    """The faults, drawn from one seeded generator, and the record of what they did."""

    def __init__(self, faults: Faults, pipeline: Pipeline, clock: VirtualClock) -> None:
        self.f = faults
        self.rng = random.Random(faults.seed)
        self.pipeline = pipeline
        self.clock = clock
        self.effects: Counter[str] = Counter()  # idempotency key -> effects that ran
        self.injected: Counter[str] = Counter()
        self.permanent_keys: set[str] = set()

    def steps(self, shards: int = 4) -> Mapping[str, StepFn]:
        sources = {
            s.fan_out.source: s.fan_out.count_field
            for s in self.pipeline.steps.values()
            if s.fan_out
        }

        def make(name: str) -> StepFn:
            field = sources.get(name)
            timeout = self.pipeline.steps[name].timeout_s

            def step(ctx: StepContext) -> StepResult:
                key = ctx.task.idempotency_key
                roll = self.rng.random()
                if roll < self.f.permanent_rate:
                    self.injected["permanent"] += 1
                    self.permanent_keys.add(key)
                    raise PermanentStepError(f"injected permanent failure in {name}")
                if roll < self.f.permanent_rate + self.f.fail_rate:
                    self.injected["transient"] += 1
                    raise Transient(f"injected transient failure in {name}")
                if self.rng.random() < self.f.slow_rate:
                    self.injected["slow"] += 1
                    self.clock.sleep(timeout + 1.0)  # past the dispatch deadline
                else:
                    self.clock.sleep(0.5)
                self.effects[key] += 1
                return StepResult(summary={field: shards} if field else {})

            return step

        return {name: make(name) for name in self.pipeline.steps}

    def deliver(self, inner: Any) -> Any:
        def deliver(request: TaskRequest, headers: Mapping[str, str], body: bytes) -> Delivered:
            status: Delivered = inner(request, headers, body)
            if self.rng.random() < self.f.duplicate_rate:
                self.injected["duplicate"] += 1
                inner(request, headers, body)  # the same delivery again (at-least-once)
            return status

        return deliver

    def notify(self, course_id: str, version: int) -> bool:
        if self.rng.random() < self.f.drop_notify_rate:
            self.injected["lost_notification"] += 1
            return False
        return True


def simulate(
    courses: int,
    faults: Faults,
    *,
    data_dir: Path,
    store: str = "memory",
    max_virtual_s: float = 7 * 24 * 3600.0,
) -> dict[str, Any]:
    wall0 = time.perf_counter()
    clock = VirtualClock()
    pipeline = default_pipeline()
    chaos = Chaos(faults, pipeline, clock)
    settings = Settings.from_env(
        {"COURSEGEN_STORE": store, "COURSEGEN_SQLITE_SYNCHRONOUS": "NORMAL"}
    )
    rt = embedded(
        data_dir,
        settings=settings,
        steps=chaos.steps(),
        clock=clock,
        store=MemoryStore() if store == "memory" else None,
        notify_filter=chaos.notify,
        deliver_wrapper=chaos.deliver,
        # As in the cloud, the bridge hears of results by notification and dispatches then
        # (the steps' services only record what a result unblocks): a lost notification
        # leaves the unblocked tasks scheduled but undispatched until the reconciler comes by.
        dispatch_follow_ups=False,
    )
    start = clock.now()
    ids = [
        rt.bridge.ingest(
            {"videoUri": f"gs://sim/{i}.mp4", "title": f"Course {i}"},
            message_id=f"sim-{faults.seed}-{i}",
        )
        for i in range(courses)
    ]
    rounds = 0
    while clock.now() - start < max_virtual_s:
        # Deliver what falls due in the next interval, on time, then reconcile at its end.
        horizon = clock.now() + RECONCILE_EVERY_S
        rt.dispatcher.run_until_idle(until=horizon)
        clock.advance_to(horizon)
        rt.bridge.reconcile(QUIET_S)
        rounds += 1
        if rt.dispatcher.pending() == 0 and not rt.store.quiet("9999", limit=1):
            break
    report = check(rt, ids, chaos)
    report["counts"].update(
        virtual_s=round(clock.now() - start, 1),
        wall_s=round(time.perf_counter() - wall0, 2),
        reconcile_rounds=rounds,
    )
    report["faults"] = faults.__dict__
    report["courses"] = courses
    rt.close()
    return report


def check(rt: Runtime, ids: list[str], chaos: Chaos) -> dict[str, Any]:
    """Every invariant, each with the courses or keys that break it (empty lists hold)."""
    statuses: Counter[str] = Counter()
    bad_endings: list[str] = []
    unverified: list[str] = []
    recorded: Counter[str] = Counter()
    attempts = 0
    for course_id in ids:
        events = rt.store.load(course_id)
        head = rt.store.head(course_id)
        try:
            verify(course_id, events, head)
        except IntegrityError as err:
            unverified.append(f"{course_id}: {err}")
        status = head.status if head else "missing"
        statuses[status] += 1
        for e in events:
            if e.type == "TaskSucceeded":
                recorded[e.data["idempotency_key"]] += 1
            elif e.type == "TaskStarted":
                attempts += 1
        if head is not None and head.status == CourseStatus.FAILED:
            failed = head.snapshot["failure"] or {}
            task = head.snapshot["tasks"].get(failed.get("task") or "", {})
            injected = (
                task.get("status") == TaskStatus.EXHAUSTED
                or task.get("key") in chaos.permanent_keys
            )
            if not injected:
                bad_endings.append(f"{course_id}: {failed.get('reason')}")
        elif status != CourseStatus.COMPLETED:
            bad_endings.append(f"{course_id}: ended {status}")
    twice = sorted(k for k, n in chaos.effects.items() if n > 1)
    recorded_twice = sorted(k for k, n in recorded.items() if n > 1)
    invariants = {
        "every_course_completed_or_failed_by_exhaustion": bad_endings[:20],
        "no_effect_ran_twice_for_one_key": twice[:20],
        "no_result_recorded_twice_for_one_key": recorded_twice[:20],
        "every_history_verifies": unverified[:20],
    }
    d = rt.dispatcher.stats
    return {
        "ok": not any(invariants.values()),
        "invariants": {k: (v or "held") for k, v in invariants.items()},
        "statuses": dict(statuses),
        "counts": {
            "tasks": sum(recorded.values()),
            "attempts": attempts,
            "deliveries": d.deliveries,
            "retries": d.retries,
            "deadline_overruns": d.deadline_exceeded,
            "queue_gave_up": d.gave_up,
            "duplicates_suppressed": rt.endpoint.answers["duplicate"],
            "dispatch_deduplicated": d.deduplicated,
            "lost_notifications": chaos.injected["lost_notification"],
            "reconciler_rescues": rt.bridge.stats["rescues"],
            "injected": dict(chaos.injected),
        },
    }
