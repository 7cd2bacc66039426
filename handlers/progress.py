"""Progress and cancellation for long steps: the checkpoint a step calls as it works.

A step calls ``ctx.progress(done, total)`` as often as it likes (Whisper: after every decoded
segment). At most once every ``CHECK_S`` the checkpoint reads the course's head: a cancelled
course, or a task superseded by a newer generation, raises ``StepCancelled`` there, so running
work stops at its next checkpoint and nothing more is recorded for it. At most once every
``EVENT_S``, and only when the fraction moved by ``MIN_STEP``, it appends a ``TaskProgress``
event: the task's projection (its snapshot's ``progress``: fraction and time) is what
``coursegen run`` and the dashboard draw, and what tells a stalled task (no progress for
``STALL_S``) from a slow one. A five-minute chunk adds a few events to the history, not one
per segment; a progress append that loses a race is simply skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from handlers.registry import PermanentStepError
from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, TransitionNotAllowed
from statemachine.events import Event, TaskProgress
from statemachine.lifecycle import CourseStatus, TaskStatus
from statemachine.ports import EventStore

CHECK_S = 1.0  # how often a checkpoint looks at the course (cancellation)
EVENT_S = 5.0  # at most one TaskProgress per task this often
MIN_STEP = 0.02  # ... and only when the fraction moved this much
STALL_S = 120.0  # a running task with no progress (or start) for this long shows as stuck


class StepCancelled(PermanentStepError):
    """The course was cancelled (or the task superseded) while the step ran: stop, record
    nothing."""


@dataclass
class Checkpoint:
    """``ctx.progress`` of one delivery (the endpoint makes one per task it runs)."""

    store: EventStore
    course_id: str
    task: str
    key: str
    attempt: int
    new: Callable[[Event], NewEvent]
    clock: Callable[[], float] = time.monotonic
    check_s: float = CHECK_S
    event_s: float = EVENT_S
    min_step: float = MIN_STEP
    _checked: float = field(default=float("-inf"), init=False)
    _sent_at: float = field(default=float("-inf"), init=False)
    _sent: float = field(default=0.0, init=False)
    events: int = field(default=0, init=False)  # TaskProgress appended (tests, benchmarks)

    def __call__(self, done: float, total: float) -> None:
        now = self.clock()
        if now - self._checked < self.check_s:
            return
        self._checked = now
        head = self.store.head(self.course_id)
        if head is None or head.status == CourseStatus.CANCELLED:
            raise StepCancelled(f"{self.task}: the course was cancelled")
        task = head.snapshot["tasks"].get(self.task)
        if task is None or task["key"] != self.key:
            raise StepCancelled(f"{self.task}: a newer generation of the task exists")
        fraction = min(1.0, max(0.0, done / total)) if total > 0 else 0.0
        due = now - self._sent_at >= self.event_s and fraction - self._sent >= self.min_step
        if not due or task["status"] != TaskStatus.RUNNING:
            return
        event = TaskProgress(
            task=self.task, idempotency_key=self.key, attempt=self.attempt, fraction=fraction
        )
        try:
            self.store.append(self.course_id, head.version, [self.new(event)])
        except (ConcurrencyConflict, TransitionNotAllowed):
            return  # someone else appended first: the next checkpoint tries again
        self._sent_at, self._sent = now, round(fraction, 4)
        self.events += 1
