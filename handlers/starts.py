"""When a first attempt's TaskStarted is recorded: with its result if the step is quick, else
by a background recorder once the step has run for a while.

A delivery used to append TaskStarted, run the step, then append the result: two transactions
(and two history entries written apart) even for a step that takes a millisecond. For a first
attempt the endpoint now appends nothing before the step runs; it registers a ``Pending`` start
here. If the step ends within ``after_s``, TaskStarted (stamped with the real start time) goes
into the result's own append. If it is still running then, the recorder appends TaskStarted on
its own, so a long step shows as running, with its attempt counted, while it runs. Retries
record TaskStarted before they run, as before, so attempts that keep crashing the process are
still counted towards the queue's limit (``Bridge.reconcile`` relies on it).

What changes for a crash in a first attempt's first ``after_s``: the history keeps the task as
scheduled instead of running; the queue (or ``Bridge.recover``) delivers it again either way.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("coursegen.endpoint")

_IDLE_S = 5.0  # the recorder's thread ends after this long with nothing pending
_TICK_S = 0.025


@dataclass(eq=False)
class Pending:
    """A first attempt's start, not yet in the history."""

    course_id: str
    name: str
    key: str
    attempt: int
    at: float  # when the attempt started (the endpoint's clock)
    due: float  # when the recorder appends it if the step still runs (monotonic)
    state: str = "waiting"  # -> "recorded" (by the recorder) or "settled" (by the delivery)
    version: int | None = None  # the course version after the recorder's append
    lock: threading.Lock = field(default_factory=threading.Lock)


class StartRecorder:
    """One background thread (started on demand, gone when idle) appending the starts of
    steps still running a while after they began."""

    def __init__(self, record: Callable[[Pending], int | None]) -> None:
        self._record = record
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Pending]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.recorded = 0  # starts the recorder appended (for tests and benchmarks)

    def add(
        self, course_id: str, name: str, key: str, attempt: int, at: float, after_s: float
    ) -> Pending:
        """Register a start made at ``at``, to record if the step still runs ``after_s`` on."""
        due = time.monotonic() + after_s
        pending = Pending(course_id, name, key, attempt, at, due)
        with self._cond:
            was_empty = not self._heap
            heapq.heappush(self._heap, (due, next(self._seq), pending))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="coursegen-starts", daemon=True
                )
                self._thread.start()
            elif was_empty:
                self._cond.notify()
        return pending

    def settle(self, pending: Pending) -> int | None:
        """The step has ended: the version after the recorder's TaskStarted, or None when it
        was not recorded (the caller appends it with the result; the recorder no longer will)."""
        with pending.lock:
            if pending.state == "recorded":
                return pending.version
            pending.state = "settled"
            return None

    def _run(self) -> None:
        while True:
            with self._cond:
                idle_since = time.monotonic()
                while not self._heap or self._heap[0][0] > time.monotonic():
                    now = time.monotonic()
                    if not self._heap and now - idle_since >= _IDLE_S:
                        self._thread = None
                        return
                    wait = self._heap[0][0] - now if self._heap else _IDLE_S
                    # a coarse tick: quick steps come and go by the thousand a second and
                    # are settled by then; waking for each would only take the GIL from them
                    self._cond.wait(timeout=max(wait, _TICK_S))
                due: list[Pending] = []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
            for pending in due:
                self._start(pending)

    def _start(self, pending: Pending) -> None:
        with pending.lock:
            if pending.state != "waiting":
                return  # the step ended first: its start goes in with its result
            try:
                version = self._record(pending)
            except Exception:  # the delivery records it with the result instead
                log.exception("recording the start of %s failed", pending.name)
                return
            if version is not None:
                pending.state, pending.version = "recorded", version
                self.recorded += 1
