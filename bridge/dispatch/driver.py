"""Driving a local queue: one delivery at a time on a virtual clock, or worker threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from statemachine.ports import Clock


class Driven:
    """``run_until_idle``, ``start`` and ``stop`` over a subclass's ``_pick`` and ``_deliver``.

    ``_pick(now)`` is called with ``_cond`` held and returns the item to deliver now, or
    ``None`` and the earliest time one could be due (``None`` when nothing is queued).
    """

    clock: Clock
    thread_name = "dispatch"

    def __init__(self) -> None:
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # workers: something may be due
        self._idle = threading.Condition(lock)  # ``wait_idle``: nothing queued or in flight
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def _pick(self, now: float) -> tuple[Any | None, float | None]:
        raise NotImplementedError

    def _deliver(self, item: Any) -> None:
        raise NotImplementedError

    def run_until_idle(
        self,
        *,
        until: float | None = None,
        max_deliveries: int | None = None,
        advance: Callable[[float], None] | None = None,
    ) -> int:
        """Deliver, one at a time, jumping the (virtual) clock to each next due time.

        Stops when nothing is queued, at virtual time ``until``, or after ``max_deliveries``.
        """
        jump = advance or self.clock.advance_to
        done = 0
        while max_deliveries is None or done < max_deliveries:
            with self._cond:
                item, soonest = self._pick(self.clock.now())
            if item is None:
                if soonest is None or (until is not None and soonest > until):
                    break
                jump(soonest)
                continue
            self._deliver(item)
            done += 1
        return done

    def start(self, workers: int = 4) -> None:
        """Deliver on ``workers`` threads against the real clock until ``stop``."""
        self._stopping = False
        for i in range(workers):
            t = threading.Thread(target=self._work, name=f"{self.thread_name}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)
        self._threads.clear()

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    item, soonest = self._pick(self.clock.now())
                    if item is not None:
                        break
                    wait = 1.0 if soonest is None else max(0.0, soonest - self.clock.now())
                    self._cond.wait(timeout=min(wait, 1.0))
            self._deliver_on_worker(item)

    def _deliver_on_worker(self, item: Any) -> None:
        """A delivery on a worker thread (``start``): ``_deliver`` unless a subclass can
        leave the answer to come later and free the worker sooner."""
        self._deliver(item)
