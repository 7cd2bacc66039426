"""A local dispatcher with Cloud Tasks semantics, configured from ``pipeline.json``.

Per queue: retries with Cloud Tasks' backoff (doubling, then linear, capped) until both max
attempts and max retry duration are reached (as Cloud Tasks documents); a token bucket at max
dispatches per second and a cap on concurrent dispatches; schedule times; named-task
de-duplication within a window; a dispatch deadline past which an attempt counts as failed.
A 429 or 503 answer with ``Retry-After`` (seconds or an HTTP date) is retried no earlier than
it says (the queue's backoff when that is later): Cloud Tasks "considers" Retry-After only as
throttling of the queue's rate, so this is the per-task reading of it (docs/operating.md).
Deliveries carry the X-CloudTasks-* headers and a signed bearer token. ``run_until_idle``
drives it on a virtual clock, one delivery at a time; ``start`` runs worker threads on the
real clock. With ``deliver_later`` a worker does not wait for the answer: the delivery hands
it back once it is durable (group commit, ``TaskEndpoint.handle_later``), and the task counts
as in flight (toward the queue's concurrency cap and its deadline) until then.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.dispatch import AlreadyExists, TaskRequest
from bridge.dispatch.driver import Driven
from statemachine.pipeline import Pipeline, Queue
from statemachine.ports import Clock

DEDUP_WINDOW_S = 3600.0  # Cloud Tasks keeps a deleted or executed task's name for about 1 h

# A delivery's answer: its status, or its status and headers (a Retry-After is honoured).
Delivered = int | tuple[int, Mapping[str, str]]
Deliver = Callable[[TaskRequest, Mapping[str, str], bytes], Delivered]
# A delivery whose answer comes later, through the callable it is given (None: no response).
Reply = Callable[[Delivered | None], None]
DeliverLater = Callable[[TaskRequest, Mapping[str, str], bytes, Reply], None]
MAX_UNANSWERED = 16  # deliveries handed over and awaiting their answer (``deliver_later``)
RETRY_AFTER_MAX_S = 24 * 3600.0  # a longer Retry-After is taken as this
Signer = Callable[[bytes], str]


@dataclass(order=True)
class _Entry:
    eta: float
    seq: int
    request: TaskRequest = field(compare=False)
    body: bytes = field(compare=False)
    first_attempt: float | None = field(default=None, compare=False)
    retries: int = field(default=0, compare=False)
    executions: int = field(default=0, compare=False)


class _Bucket:
    """Token bucket: ``rate`` tokens a second, holding at most one second's worth (>= 1)."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def ready_at(self, now: float) -> float:
        self._refill(now)
        return now if self.tokens >= 1.0 else now + (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


@dataclass
class DispatchStats:
    dispatched: int = 0
    deduplicated: int = 0
    deliveries: int = 0
    retries: int = 0
    deadline_exceeded: int = 0
    gave_up: int = 0
    retry_after: int = 0  # retries held longer than the backoff by a Retry-After
    max_concurrent_seen: dict[str, int] = field(default_factory=dict)
    delivery_times: list[tuple[str, str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "delivery_times"}


class LocalDispatcher(Driven):
    def __init__(
        self,
        pipeline: Pipeline,
        deliver: Deliver,
        clock: Clock,
        *,
        signer: Signer | None = None,
        dedup_window_s: float = DEDUP_WINDOW_S,
        record_times: bool = False,
        deliver_later: DeliverLater | None = None,
        max_unanswered: int = MAX_UNANSWERED,
    ) -> None:
        self.pipeline = pipeline
        self.deliver = deliver
        # used by worker threads (``start``) when given; ``run_until_idle`` uses ``deliver``
        self.deliver_later = deliver_later
        # deliveries handed over by the workers and not yet answered: past this many a worker
        # waits, so answers do not queue up behind new work (the overhead stays about an fsync)
        self._unanswered = threading.BoundedSemaphore(max_unanswered)
        self.clock = clock
        self.signer = signer
        self.dedup_window_s = dedup_window_s
        self.record_times = record_times
        self.stats = DispatchStats()
        self._heaps: dict[str, list[_Entry]] = {q: [] for q in pipeline.queues}
        self._buckets = {
            q.name: _Bucket(q.max_dispatches_per_s, clock.now()) for q in pipeline.queues.values()
        }
        self._inflight = dict.fromkeys(pipeline.queues, 0)
        self._names: dict[str, float] = {}
        self._seq = itertools.count()
        super().__init__()

    # -- the port -----------------------------------------------------------------------
    def dispatch(self, request: TaskRequest) -> None:
        if request.queue not in self._heaps:
            raise ValueError(f"unknown queue {request.queue!r}")
        body = orjson.dumps(dict(request.payload))  # compact JSON, as a task's HTTP body
        with self._cond:
            now = self.clock.now()
            seen = self._names.get(request.name)
            if seen is not None and now - seen < self.dedup_window_s:
                self.stats.deduplicated += 1
                raise AlreadyExists(f"task {request.name} already exists in {request.queue}")
            self._names[request.name] = now
            eta = request.schedule_time if request.schedule_time is not None else now
            heapq.heappush(self._heaps[request.queue], _Entry(eta, next(self._seq), request, body))
            self.stats.dispatched += 1
            self._cond.notify()  # one entry: one worker to wake, not all of them

    def set_limits(self, pipeline: Pipeline) -> None:
        """Take the rate and concurrency limits of ``pipeline`` (same queues), e.g. to lift
        them for a benchmark of orchestration alone."""
        with self._cond:
            self.pipeline = pipeline
            now = self.clock.now()
            self._buckets = {
                q.name: _Bucket(q.max_dispatches_per_s, now) for q in pipeline.queues.values()
            }
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return sum(len(h) for h in self._heaps.values()) + sum(self._inflight.values())

    # -- picking the next delivery --------------------------------------------------------
    def _pick(self, now: float) -> tuple[_Entry | None, float | None]:
        """The entry to deliver now, or None and the earliest time one could be."""
        soonest: float | None = None
        best: tuple[float, int, str] | None = None
        for name, heap in self._heaps.items():
            if not heap or self._inflight[name] >= self.pipeline.queues[name].max_concurrent:
                continue
            at = max(heap[0].eta, self._buckets[name].ready_at(now))
            if at <= now and (best is None or (heap[0].eta, heap[0].seq) < best[:2]):
                best = (heap[0].eta, heap[0].seq, name)
            soonest = at if soonest is None else min(soonest, at)
        if best is None:
            return None, soonest
        queue = best[2]
        self._buckets[queue].take(now)
        self._inflight[queue] += 1
        seen = self.stats.max_concurrent_seen
        seen[queue] = max(seen.get(queue, 0), self._inflight[queue])
        return heapq.heappop(self._heaps[queue]), None

    # -- one delivery -------------------------------------------------------------------
    def _deliver(self, entry: _Entry) -> None:
        req = entry.request
        start = self.clock.now()
        headers = self._headers(entry, start)
        status: int | None = None
        answer: Mapping[str, str] = {}
        with self.clock.lane():
            try:
                delivered = self.deliver(req, headers, entry.body)
                status, answer = (delivered, {}) if isinstance(delivered, int) else delivered
            except Exception:  # a connection error or a crash: no response, no execution
                status = None
            elapsed = self.clock.now() - start
        self._answered(entry, start, elapsed, status, answer)

    def _deliver_on_worker(self, entry: _Entry) -> None:
        """On a worker thread, with ``deliver_later``: the worker moves on once the delivery
        has handed its answer over; the task stays in flight until the answer comes."""
        if self.deliver_later is None:
            self._deliver(entry)
            return
        held = self._hold_slot()
        start = self.clock.now()

        def reply(delivered: Delivered | None) -> None:
            if held:
                self._unanswered.release()
            elapsed = self.clock.now() - start
            if delivered is None:
                self._answered(entry, start, elapsed, None, {})
            elif isinstance(delivered, int):
                self._answered(entry, start, elapsed, delivered, {})
            else:
                self._answered(entry, start, elapsed, delivered[0], delivered[1])

        try:
            self.deliver_later(entry.request, self._headers(entry, start), entry.body, reply)
        except Exception:  # a crash: no response, no execution (and no reply to come)
            reply(None)

    def _hold_slot(self) -> bool:
        """Wait for room among the unanswered deliveries (``max_unanswered``); False if the
        dispatcher is stopping meanwhile (the delivery goes ahead without a slot)."""
        while not self._unanswered.acquire(timeout=1.0):
            if self._stopping:
                return False
        return True

    def _headers(self, entry: _Entry, start: float) -> dict[str, str]:
        req = entry.request
        if entry.first_attempt is None:
            entry.first_attempt = start
        headers = {
            "Content-Type": "application/json",
            "X-CloudTasks-QueueName": req.queue,
            "X-CloudTasks-TaskName": req.name,
            "X-CloudTasks-TaskRetryCount": str(entry.retries),
            "X-CloudTasks-TaskExecutionCount": str(entry.executions),
            "X-CloudTasks-TaskETA": f"{entry.eta:.6f}",
        }
        if self.signer is not None:
            headers["Authorization"] = f"Bearer {self.signer(entry.body)}"
        return headers

    def _answered(
        self,
        entry: _Entry,
        start: float,
        elapsed: float,
        status: int | None,
        answer: Mapping[str, str],
    ) -> None:
        req = entry.request
        queue = self.pipeline.queues[req.queue]
        with self._cond:
            self.stats.deliveries += 1
            if self.record_times:
                self.stats.delivery_times.append((req.queue, req.name, start))
            self._inflight[req.queue] -= 1
            late = elapsed > req.deadline_s
            if late:
                self.stats.deadline_exceeded += 1
            # Cloud Tasks counts an execution only for a response in time that is not a 5xx.
            if status is not None and not late and not 500 <= status < 600:
                entry.executions += 1
            if status is None or late or not 200 <= status < 300:
                wait = retry_after(answer, self.clock.now()) if status in (429, 503) else None
                self._retry(entry, queue, wait)
            self._cond.notify()  # a slot freed (or one retry queued): one worker to wake
            if self._is_idle():
                self._idle.notify_all()

    def _retry(self, entry: _Entry, queue: Queue, wait_s: float | None = None) -> None:
        entry.retries += 1
        attempts = entry.retries
        retry = queue.retry
        now = self.clock.now()
        delay = retry.backoff(entry.retries)
        if wait_s is not None and wait_s > delay:
            self.stats.retry_after += 1
            delay = wait_s
        assert entry.first_attempt is not None
        # Cloud Tasks stops only when both limits are met: max attempts made and max retry
        # duration passed (a duration of 0 is no limit on time).
        out_of_time = (
            retry.max_retry_duration_s <= 0
            or now + delay - entry.first_attempt > retry.max_retry_duration_s
        )
        if attempts >= retry.max_attempts and out_of_time:
            self.stats.gave_up += 1
            return
        self.stats.retries += 1
        entry.eta = now + delay
        entry.seq = next(self._seq)
        heapq.heappush(self._heaps[queue.name], entry)

    # -- driving: run_until_idle, start and stop come from Driven --------------------
    def wait_idle(self, timeout: float | None = None) -> bool:
        # On its own condition: woken when the queue empties, not at every delivery.
        with self._cond:
            return self._idle.wait_for(self._is_idle, timeout)

    def _is_idle(self) -> bool:
        return not any(self._heaps.values()) and not any(self._inflight.values())


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), read
    case-insensitively; None when absent or unreadable; at most ``RETRY_AFTER_MAX_S``."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        seconds = float(text)
    else:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, min(seconds, RETRY_AFTER_MAX_S))
