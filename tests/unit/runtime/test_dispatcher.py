"""The local dispatcher against each Cloud Tasks semantic, on a virtual clock (milliseconds of
real time), plus the concurrency cap with real worker threads."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest

from bridge.dispatch import AlreadyExists
from bridge.dispatch.local import DEDUP_WINDOW_S, LocalDispatcher
from bridge.runtime.clock import SystemClock, VirtualClock
from handlers.auth import HmacVerifier, Unauthorized, header, sign
from statemachine.pipeline import default_pipeline

from .conftest import SECRET, T0, ScriptedDeliver, one_queue_pipeline, task_request

HEADER_NAMES = (
    "X-CloudTasks-QueueName",
    "X-CloudTasks-TaskName",
    "X-CloudTasks-TaskRetryCount",
    "X-CloudTasks-TaskExecutionCount",
    "X-CloudTasks-TaskETA",
)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


def dispatcher(clock: VirtualClock, deliver: ScriptedDeliver, **pipeline: object):
    return LocalDispatcher(one_queue_pipeline(**pipeline), deliver, clock)  # type: ignore[arg-type]


# -- retry ---------------------------------------------------------------------------------
def test_retries_follow_the_cloud_tasks_backoff_for_10_300_3(clock):
    deliver = ScriptedDeliver(clock, default=503)
    d = dispatcher(clock, deliver, max_attempts=9, min_backoff=10, max_backoff=300, max_doublings=3)
    d.dispatch(task_request())

    assert d.run_until_idle() == 9
    assert gaps(deliver.times()) == [10, 20, 40, 80, 160, 240, 300, 300]
    assert d.stats.retries == 8
    assert d.stats.gave_up == 1
    assert d.pending() == 0


@pytest.mark.parametrize(
    ("queue", "delays"),
    [
        ("video-preparation-queue", [10, 20, 40, 80, 160, 240, 300, 300]),
        ("ai-analysis-queue", [30, 60, 120, 240, 480, 600, 600, 600]),
    ],
)
def test_backoff_of_the_shipped_queues(queue, delays):
    retry = default_pipeline().queues[queue].retry
    assert [retry.backoff(k) for k in range(1, 9)] == delays
    with pytest.raises(ValueError):
        retry.backoff(0)


def test_max_attempts_stops_retrying(clock):
    deliver = ScriptedDeliver(clock, default=500)
    d = dispatcher(clock, deliver, max_attempts=3)
    d.dispatch(task_request())

    d.run_until_idle()
    clock.advance_to(T0 + 10 * 24 * 3600)
    d.run_until_idle()

    assert len(deliver.calls) == 3
    assert [c.header("X-CloudTasks-TaskRetryCount") for c in deliver.calls] == ["0", "1", "2"]
    assert d.stats.gave_up == 1
    assert d.stats.retries == 2
    assert d.pending() == 0


def test_max_retry_duration_stops_retrying_once_it_has_passed(clock):
    # Cloud Tasks stops only when both limits are met: with 2 attempts allowed but 100 s of
    # retry duration, it keeps going until the next retry would start past 100 s.
    deliver = ScriptedDeliver(clock, default=503)
    d = dispatcher(clock, deliver, max_attempts=2, max_retry_duration=100)
    d.dispatch(task_request())

    d.run_until_idle()

    assert deliver.times() == [0, 10, 30, 70]  # the next would be at 150 > 100
    assert d.stats.gave_up == 1
    assert d.pending() == 0


def test_max_attempts_still_counts_when_the_retry_duration_is_short(clock):
    deliver = ScriptedDeliver(clock, default=503)
    d = dispatcher(clock, deliver, max_attempts=6, max_retry_duration=20)
    d.dispatch(task_request())

    d.run_until_idle()

    assert deliver.times() == [0, 10, 30, 70, 150, 310]
    assert d.stats.gave_up == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 503])
def test_any_non_2xx_is_retried_with_backoff(clock, status):
    deliver = ScriptedDeliver(clock, script=[status, status, 200])
    d = dispatcher(clock, deliver)
    d.dispatch(task_request())

    d.run_until_idle()

    assert deliver.times() == [0, 10, 30]
    assert d.stats.retries == 2
    assert d.stats.gave_up == 0


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_ends_the_task(clock, status):
    deliver = ScriptedDeliver(clock, default=status)
    d = dispatcher(clock, deliver)
    d.dispatch(task_request())

    d.run_until_idle()
    clock.advance_to(T0 + 3600)
    d.run_until_idle()

    assert len(deliver.calls) == 1
    assert d.stats.retries == 0
    assert d.pending() == 0


def test_no_response_is_retried_and_is_not_an_execution(clock):
    # A raised error is a connection failure: no response, so not an execution; a 5xx is a
    # response but Cloud Tasks does not count it either; a 4xx counts. Retries count all.
    deliver = ScriptedDeliver(
        clock, script=[ConnectionError("reset"), 503, TimeoutError("no answer"), 404, 200]
    )
    d = dispatcher(clock, deliver)
    d.dispatch(task_request())

    d.run_until_idle()

    retries = [c.header("X-CloudTasks-TaskRetryCount") for c in deliver.calls]
    executions = [c.header("X-CloudTasks-TaskExecutionCount") for c in deliver.calls]
    assert retries == ["0", "1", "2", "3", "4"]
    assert executions == ["0", "0", "0", "0", "1"]
    assert deliver.times() == [0, 10, 30, 70, 150]
    assert d.stats.deliveries == 5


# -- headers and the token ------------------------------------------------------------------
def test_deliveries_carry_the_cloud_tasks_headers(clock):
    deliver = ScriptedDeliver(clock, script=[503, 200])
    d = dispatcher(clock, deliver)
    request = task_request(schedule_time=T0 + 5)
    d.dispatch(request)

    d.run_until_idle()

    first, second = deliver.calls
    assert set(HEADER_NAMES) <= set(first.headers)
    assert first.header("X-CloudTasks-QueueName") == "q"
    assert first.header("X-CloudTasks-TaskName") == request.name
    assert request.name.startswith("t") and len(request.name) == 41
    assert first.header("X-CloudTasks-TaskRetryCount") == "0"
    assert first.header("X-CloudTasks-TaskExecutionCount") == "0"
    assert float(first.header("X-CloudTasks-TaskETA")) == pytest.approx(T0 + 5)
    assert first.header("Content-Type") == "application/json"
    assert json.loads(first.body) == dict(request.payload)
    # the retry is a new ETA with the counts moved on; the body is the same bytes
    assert second.header("X-CloudTasks-TaskRetryCount") == "1"
    assert float(second.header("X-CloudTasks-TaskETA")) == pytest.approx(T0 + 5 + 10)
    assert second.body == first.body
    # the endpoint reads them whatever their case
    lowered = {k.lower(): v for k, v in first.headers.items()}
    assert header(lowered, "X-CloudTasks-TaskName") == request.name
    assert header({k.upper(): v for k, v in first.headers.items()}, "x-cloudtasks-queuename")


def test_the_signed_token_verifies_for_its_body_only(clock):
    deliver = ScriptedDeliver(clock)
    d = LocalDispatcher(
        one_queue_pipeline(),
        deliver,
        clock,
        signer=lambda body: sign(SECRET, body, int(clock.now() + 60)),
    )
    d.dispatch(task_request(1))
    d.dispatch(task_request(2))
    d.run_until_idle()
    one, two = deliver.calls
    verify = HmacVerifier(SECRET, clock.now)

    assert one.header("Authorization").startswith("Bearer v1.")
    assert verify(one.headers, one.body, "local://finalize") == "local-dispatcher"
    with pytest.raises(Unauthorized, match="does not match"):
        verify(one.headers, two.body, "local://finalize")  # a token lifted onto another task
    with pytest.raises(Unauthorized, match="does not match"):
        HmacVerifier(b"another secret", clock.now)(one.headers, one.body, "")
    clock.advance_to(T0 + 61)
    with pytest.raises(Unauthorized, match="expired"):
        verify(one.headers, one.body, "local://finalize")


def test_without_a_signer_there_is_no_authorization_header(clock):
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver)
    d.dispatch(task_request())
    d.run_until_idle()
    assert "Authorization" not in deliver.calls[0].headers


# -- rate limits --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (2, [0, 0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),  # a burst of 2, then 2 a second
        (0.5, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]),  # capacity is at least one token
        (5, [0, 0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_token_bucket_limits_dispatches_per_second(clock, rate, expected):
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver, rate=rate)
    for n in range(10):
        d.dispatch(task_request(n))

    d.run_until_idle()

    times = deliver.times()
    assert times == pytest.approx(expected)
    capacity = max(1, rate)
    for k, t in enumerate(times):  # never faster than the rate after the initial burst
        assert t >= (k - capacity + 1) / rate - 1e-6  # float resolution near 1.79e9 s
    assert all(c.header("X-CloudTasks-TaskRetryCount") == "0" for c in deliver.calls)


def test_each_queue_has_its_own_bucket(clock):
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver, rate=1, queues=("a", "b"))
    for n in range(2):
        d.dispatch(task_request(n, queue="a"))
        d.dispatch(task_request(n + 10, queue="b"))

    d.run_until_idle()

    by_queue = {q: [c.at for c in deliver.calls if c.request.queue == q] for q in ("a", "b")}
    assert by_queue == {"a": [0, 1], "b": [0, 1]}


def test_retries_are_rate_limited_too(clock):
    deliver = ScriptedDeliver(clock, script=[503], default=200)
    d = dispatcher(clock, deliver, rate=1, min_backoff=1, max_backoff=1)
    for n in range(3):
        d.dispatch(task_request(n))

    d.run_until_idle()

    assert deliver.times() == pytest.approx([0, 1, 2, 3])  # the retry waits for its token


def test_max_concurrent_dispatches_with_worker_threads():
    limit, tasks = 3, 12
    release = threading.Event()
    lock = threading.Lock()
    in_flight = seen = started = 0

    def deliver(request, headers, body):
        nonlocal in_flight, seen, started
        with lock:
            in_flight += 1
            started += 1
            seen = max(seen, in_flight)
        release.wait(5)
        with lock:
            in_flight -= 1
        return 200

    d = LocalDispatcher(one_queue_pipeline(max_concurrent=limit), deliver, SystemClock())
    d.start(workers=8)
    try:
        for n in range(tasks):
            d.dispatch(task_request(n))
        deadline = time.monotonic() + 5
        while started < limit and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # give the five idle workers a chance to overstep the cap
        with lock:
            assert (in_flight, started) == (limit, limit)
        release.set()
        assert d.wait_idle(timeout=5)
    finally:
        release.set()
        d.stop()

    assert seen == limit
    assert d.stats.max_concurrent_seen["q"] == limit
    assert d.stats.deliveries == tasks
    assert d.pending() == 0


def test_max_concurrent_on_the_virtual_clock_counts_slow_deliveries(clock):
    # One at a time on the virtual clock, so in flight is never above one; the cap of one
    # must not stall the queue either.
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver, max_concurrent=1)
    for n in range(4):
        d.dispatch(task_request(n))
    assert d.run_until_idle() == 4
    assert d.stats.max_concurrent_seen["q"] == 1


# -- schedule time, de-duplication, deadline ----------------------------------------------
def test_schedule_time_delays_delivery(clock):
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver)
    later = task_request(1, schedule_time=T0 + 300)
    now = task_request(2)
    d.dispatch(later)
    d.dispatch(now)

    d.run_until_idle(until=T0 + 299)
    assert [c.request.name for c in deliver.calls] == [now.name]
    assert d.pending() == 1

    d.run_until_idle()
    assert [(c.request.name, c.at) for c in deliver.calls] == [(now.name, 0), (later.name, 300)]


def test_a_name_seen_within_the_window_is_refused(clock):
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver)
    request = task_request()
    d.dispatch(request)

    with pytest.raises(AlreadyExists):
        d.dispatch(request)
    d.run_until_idle()  # executed; the name is still kept for the window
    clock.advance_to(T0 + DEDUP_WINDOW_S - 1)
    with pytest.raises(AlreadyExists):
        d.dispatch(request)
    assert d.stats.deduplicated == 2
    assert len(deliver.calls) == 1

    clock.advance_to(T0 + DEDUP_WINDOW_S)
    d.dispatch(request)  # after the window the name is free again
    d.run_until_idle()
    assert len(deliver.calls) == 2
    assert d.stats.dispatched == 2


def test_the_dedup_window_is_configurable_and_unknown_queues_are_refused(clock):
    deliver = ScriptedDeliver(clock)
    d = LocalDispatcher(one_queue_pipeline(), deliver, clock, dedup_window_s=10)
    d.dispatch(task_request())
    clock.advance_to(T0 + 10)
    d.dispatch(task_request())
    assert d.pending() == 2
    with pytest.raises(ValueError, match="unknown queue"):
        d.dispatch(task_request(queue="nope"))


def test_running_past_the_dispatch_deadline_is_a_failed_attempt(clock):
    def overrun() -> int:
        clock.sleep(61)  # inside the delivery's lane: only this delivery's view of time moves
        return 200

    deliver = ScriptedDeliver(clock, script=[overrun, 200])
    d = dispatcher(clock, deliver)
    d.dispatch(task_request(deadline_s=60))

    d.run_until_idle()

    assert deliver.times() == [0, 10]  # retried after the min backoff despite its 200
    assert d.stats.deadline_exceeded == 1
    assert d.stats.retries == 1
    # a late answer is no execution; the base clock never moved by the overrun
    assert deliver.calls[1].header("X-CloudTasks-TaskExecutionCount") == "0"
    assert clock.now() == T0 + 10


def test_a_delivery_within_the_deadline_is_not_late(clock):
    def slow() -> int:
        clock.sleep(59)
        return 200

    deliver = ScriptedDeliver(clock, script=[slow])
    d = dispatcher(clock, deliver)
    d.dispatch(task_request(deadline_s=60))
    d.run_until_idle()
    assert len(deliver.calls) == 1
    assert d.stats.deadline_exceeded == 0


def test_run_until_idle_waits_on_the_system_clock_and_honours_its_limits(clock):
    real = SystemClock()
    on_real = LocalDispatcher(one_queue_pipeline(), ScriptedDeliver(real), real)
    on_real.dispatch(task_request(schedule_time=real.now() + 0.05))
    before = real.now()
    assert on_real.run_until_idle() == 1  # the system clock cannot jump: it waited
    assert real.now() - before >= 0.04
    deliver = ScriptedDeliver(clock)
    d = dispatcher(clock, deliver)
    for n in range(3):
        d.dispatch(task_request(n))
    assert d.run_until_idle(max_deliveries=2) == 2
    assert d.pending() == 1


def test_a_worker_moves_on_while_an_answer_comes_later_and_the_task_stays_in_flight():
    # ``deliver_later``: one worker hands out every delivery without waiting for the answers;
    # each task counts toward the cap until its answer, and no answer means a retry.
    replies = []
    lock = threading.Lock()

    def later(request, headers, body, reply):
        with lock:
            replies.append(reply)

    d = LocalDispatcher(
        one_queue_pipeline(max_concurrent=3, min_backoff=0.01, max_backoff=0.01),
        lambda request, headers, body: 200,
        SystemClock(),
        deliver_later=later,
    )
    d.start(workers=1)
    try:
        for n in range(4):
            d.dispatch(task_request(n))
        deadline = time.monotonic() + 5
        while len(replies) < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # the one worker is free, but the cap holds the fourth back
        with lock:
            assert len(replies) == 3
        assert d.pending() == 4
        replies[0](None)  # no response: retried; the freed slot takes the fourth task
        replies[1](200)
        replies[2]((200, {}))
        while len(replies) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        with lock:
            later_ones = replies[3:]
        for reply in later_ones:
            reply(200)
        assert d.wait_idle(timeout=5)
    finally:
        d.stop()
    assert d.stats.deliveries == 5
    assert d.stats.retries == 1
    assert d.stats.max_concurrent_seen["q"] == 3


def test_run_until_idle_answers_on_the_caller_even_with_deliver_later(clock):
    deliver = ScriptedDeliver(clock)
    d = LocalDispatcher(
        one_queue_pipeline(), deliver, clock, deliver_later=lambda *a: pytest.fail("threaded")
    )
    d.dispatch(task_request())
    assert d.run_until_idle() == 1
    assert d.stats.deliveries == 1


def test_workers_wait_while_max_unanswered_deliveries_await_their_answers():
    replies = []
    lock = threading.Lock()

    def later(request, headers, body, reply):
        with lock:
            replies.append(reply)

    d = LocalDispatcher(
        one_queue_pipeline(),
        lambda request, headers, body: 200,
        SystemClock(),
        deliver_later=later,
        max_unanswered=2,
    )
    d.start(workers=4)
    try:
        for n in range(5):
            d.dispatch(task_request(n))
        deadline = time.monotonic() + 5
        while len(replies) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # four idle workers, but only two answers may be outstanding
        with lock:
            assert len(replies) == 2
        answered = 0
        while answered < 5 and time.monotonic() < deadline:
            with lock:
                ready = replies[answered:]
            for reply in ready:
                reply(200)
            answered += len(ready)
            time.sleep(0.001)
        assert d.wait_idle(timeout=5)
    finally:
        d.stop()
    assert d.stats.deliveries == 5
