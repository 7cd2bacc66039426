"""Recovery and reconciliation: what brings quiet or orphaned courses back to life.

``recover`` re-enqueues the waiting tasks of every active course after a restart;
``reconcile`` advances courses that went quiet (a lost notification) and fails the tasks a
queue has given up on without any result (``exhaust_abandoned``). Each takes the ``Bridge``
it works through; ``Bridge.recover`` and ``Bridge.reconcile`` delegate here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, TransitionNotAllowed
from statemachine.events import TaskExhausted
from statemachine.timefmt import iso, parse_iso

if TYPE_CHECKING:
    from bridge.core import Bridge

_ACTIVE = ("requested", "running", "paused")


def recover(bridge: Bridge, *, limit: int = 100_000) -> dict[str, int]:
    """Re-enqueue the waiting tasks of every active course after a restart.

    Cloud Tasks keeps its queues; the local dispatcher's queue lives in memory and dies
    with the process. Every task that is scheduled, running (its process died) or
    retrying is dispatched again; the endpoint's idempotency makes a stale copy a no-op.
    """
    courses = tasks = 0
    for head in bridge.store.courses(limit=limit):
        if head.status not in _ACTIVE:
            continue
        courses += 1
        bridge.advance(head.course_id)
        state = bridge.state(head.course_id)
        if state is None:
            continue
        for task in state.tasks.values():
            if task.status in ("running", "retrying"):
                bridge.dispatch(state, task)
                tasks += 1
    return {"courses": courses, "tasks": tasks}


def reconcile(bridge: Bridge, quiet_s: float, *, limit: int = 1000) -> dict[str, int]:
    """Advance every non-terminal course quiet for ``quiet_s``: rescues lost notifications."""
    before = iso(bridge.clock.now() - quiet_s)
    checked = rescued = abandoned = 0
    for course_id in bridge.store.quiet(before, limit=limit):
        checked += 1
        abandoned += exhaust_abandoned(bridge, course_id)
        commands, waiting = bridge.advance_counted(course_id)
        if commands or waiting:
            rescued += 1
    bridge.stats["rescues"] += rescued
    return {"checked": checked, "rescued": rescued, "abandoned": abandoned}


def exhaust_abandoned(bridge: Bridge, course_id: str) -> int:
    """Record TaskExhausted for tasks the queue has given up on without any result.

    A handler that dies after TaskStarted on its last attempts leaves the task running
    (or retrying) forever: once both of the queue's limits have passed, plus a backoff
    and a dispatch deadline, no delivery will ever come, so the course must fail.
    """
    state = bridge.state(course_id)
    if state is None or state.status not in ("running", "paused"):
        return 0
    now = bridge.clock.now()
    stale = []
    for task in state.tasks.values():
        if task.status not in ("running", "retrying") or task.started_at is None:
            continue
        retry = bridge.pipeline.queues[task.queue].retry
        deadline = bridge.pipeline.steps[task.step].timeout_s
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
