"""Clocks: the system clock, and a virtual clock for simulations and tests of timing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def advance_to(self, t: float) -> None:
        """Real time cannot jump: wait until ``t``."""
        self.sleep(t - time.time())

    @contextmanager
    def lane(self) -> Iterator[None]:
        """Real time is already per thread: nothing to set up."""
        yield


class _Lane(threading.local):
    """One thread's view of virtual time inside ``VirtualClock.lane()``."""

    active = False
    offset = 0.0


class VirtualClock:
    """Time that moves only when told: ``sleep`` and ``advance_to`` jump it forward.

    Inside ``lane()`` a thread runs on its own lane: its sleeps move only its own view of
    time, as if it ran on a worker of its own, so one slow delivery does not stall the
    others (a queue's deliveries run concurrently in Cloud Tasks).
    """

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._lane = _Lane()

    def now(self) -> float:
        with self._lock:
            return self._now + self._lane.offset

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._lane.active:
            self._lane.offset += seconds
            return
        with self._lock:
            self._now += seconds

    def advance_to(self, t: float) -> None:
        with self._lock:
            self._now = max(self._now, t)

    @contextmanager
    def lane(self) -> Iterator[None]:
        self._lane.active, self._lane.offset = True, 0.0
        try:
            yield
        finally:
            self._lane.active, self._lane.offset = False, 0.0
