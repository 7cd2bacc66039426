"""Recovery and reconciliation: what brings quiet or orphaned courses back to life.

``recover`` re-enqueues the waiting tasks of every active course after a restart;
``reconcile`` advances courses that went quiet (a lost notification) and fails the tasks a
queue has given up on without any result (``exhaust_abandoned``). Each takes the ``Bridge``
it works through; ``Bridge.recover`` and ``Bridge.reconcile`` delegate here. ``ReconcileLoop``
runs both, and notices courses other processes changed, in every long-running local process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, TransitionNotAllowed
from statemachine.events import TaskExhausted
from statemachine.lifecycle import ACTIVE_COURSE, CourseStatus, TaskStatus
from statemachine.timefmt import iso, parse_iso

if TYPE_CHECKING:
    from bridge.core import Bridge

log = logging.getLogger("coursegen.reconcile")

# A started course, and the tasks its queue still holds (a delivery is due or running).
_STARTED = frozenset({CourseStatus.RUNNING, CourseStatus.PAUSED})
_IN_QUEUE = frozenset({TaskStatus.RUNNING, TaskStatus.RETRYING})


def recover(bridge: Bridge, *, limit: int = 100_000) -> dict[str, int]:
    """Re-enqueue the waiting tasks of every active course after a restart.

    Cloud Tasks keeps its queues; the local dispatcher's queue lives in memory and dies
    with the process. Every task that is scheduled, running (its process died) or
    retrying is dispatched again; the endpoint's idempotency makes a stale copy a no-op.
    """
    courses = tasks = 0
    for head in bridge.store.courses(limit=limit):
        if head.status not in ACTIVE_COURSE or not bridge.partition.owns(head.course_id):
            continue
        courses += 1
        bridge.advance(head.course_id)
        state = bridge.state(head.course_id)
        if state is None:
            continue
        for task in state.tasks.values():
            if task.status in _IN_QUEUE:
                bridge.dispatch(state, task)
                tasks += 1
    return {"courses": courses, "tasks": tasks}


def reconcile(bridge: Bridge, quiet_s: float, *, limit: int = 1000) -> dict[str, int]:
    """Advance every non-terminal course quiet for ``quiet_s``: rescues lost notifications."""
    before = iso(bridge.clock.now() - quiet_s)
    checked = rescued = abandoned = 0
    admitted = 0
    if bridge.admission is not None:  # the ledger re-read: what other processes changed
        bridge.admission.load()
        admitted = len(bridge.admit_waiting())
    for course_id in bridge.store.quiet(before, limit=limit):
        if not bridge.partition.owns(course_id):
            continue
        checked += 1
        abandoned += exhaust_abandoned(bridge, course_id)
        commands, waiting = bridge.advance_counted(course_id)
        if commands or waiting:
            rescued += 1
    bridge.stats["rescues"] += rescued
    counts = {"checked": checked, "rescued": rescued, "abandoned": abandoned}
    if bridge.admission is not None:
        counts["admitted"] = admitted
    return counts


def exhaust_abandoned(bridge: Bridge, course_id: str) -> int:
    """Record TaskExhausted for tasks the queue has given up on without any result.

    A handler that dies after TaskStarted on its last attempts leaves the task running
    (or retrying) forever: once both of the queue's limits have passed, plus a backoff
    and a dispatch deadline, no delivery will ever come, so the course must fail.
    """
    state = bridge.state(course_id)
    if state is None or state.status not in _STARTED:
        return 0
    now = bridge.clock.now()
    stale = []
    pipeline = bridge.pipeline_of(state)
    for task in state.tasks.values():
        if task.status not in _IN_QUEUE or task.started_at is None:
            continue
        assert bridge.pipelines is not None  # set at construction
        retry = bridge.pipelines.merged.queues[task.queue].retry  # the queue it is on
        deadline = pipeline.steps[task.step].timeout_s
        horizon = retry.max_retry_duration_s + retry.max_backoff_s + deadline
        if task.last_attempt >= retry.max_attempts and now - parse_iso(task.started_at) > (horizon):
            stale.append(task)
    if not stale:
        return 0
    events = [
        NewEvent(
            event=TaskExhausted(
                task=t.name,
                idempotency_key=t.idempotency_key,
                attempts=t.attempts,
                error="no result within the queue's retry limits: the handler never answered",
            ),
            occurred_at=iso(now),
            actor="reconciler",
            correlation_id=course_id,
            idempotency_key=t.idempotency_key,
        )
        for t in stale
    ]
    try:
        bridge.store.append(course_id, state.version, events)
    except (ConcurrencyConflict, TransitionNotAllowed):
        return 0  # the course moved on: the next round looks again
    return len(events)


class ReconcileLoop:
    """The reconciler of a long-running local process (``coursegen serve``, ``run``, ``work``),
    on a thread.

    Every ``watch_s`` it looks at the courses whose head moved since its last look
    (``EventStore.moved``) and advances each one this bridge has not itself settled at that
    version: an operator event another process recorded (``coursegen resume`` or ``redrive``
    from the CLI record the event only) is decided and dispatched here, within about a second.
    Every ``reconcile_s`` it runs ``reconcile(quiet_s)``, as the cloud's scheduler does.
    """

    def __init__(
        self,
        bridge: Bridge,
        *,
        quiet_s: float,
        watch_s: float = 0.5,
        reconcile_s: float = 30.0,
        margin_s: float = 5.0,
    ) -> None:
        self.bridge = bridge
        self.quiet_s = quiet_s
        self.watch_s = watch_s
        self.reconcile_s = reconcile_s
        self.margin_s = margin_s  # clock skew between processes, and commit after stamping
        self.advanced = 0
        self._seen: dict[str, int] = {}
        self._looked = bridge.clock.now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self) -> int:
        """Advance every course that moved since the last look; how many were advanced."""
        now = self.bridge.clock.now()
        since = iso(self._looked - self.margin_s)
        self._looked = now
        seen: dict[str, int] = {}
        advanced = 0
        owns = self.bridge.partition.owns
        for course_id, version in self.bridge.store.moved(since):
            if not owns(course_id):
                continue
            seen[course_id] = version
            if self._seen.get(course_id) == version:
                continue
            try:
                # skipped at once when this bridge decided and dispatched that version itself
                self.bridge.advance(course_id, version)
                advanced += 1
            except Exception:  # one course's trouble must not stop the loop
                log.exception("reconciler: advancing course %s failed", course_id)
        self._seen = seen  # bounded: only what moved within the window
        self.advanced += advanced
        return advanced

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        last_reconcile = time.monotonic()
        while not self._stop.wait(self.watch_s):
            try:
                self.watch()
                if time.monotonic() - last_reconcile >= self.reconcile_s:
                    last_reconcile = time.monotonic()
                    reconcile(self.bridge, self.quiet_s)
            except Exception:  # the store is busy or closing: look again next time
                log.exception("reconciler: a round failed")
