"""One contract for every EventStore adapter: memory, SQLite and (with the emulator) Firestore."""

from __future__ import annotations

import threading

import pytest

from statemachine.audit import verify
from statemachine.errors import ConcurrencyConflict, EventTooLarge, TransitionNotAllowed
from statemachine.events import CourseCancelled, TaskSucceeded
from statemachine.reducer import fold
from statemachine.timefmt import iso
from tests.factories import T0, new, one_step_history, requested, scheduled, started, types


def test_append_assigns_gapless_versions(store):
    assert store.append("c1", 0, [requested()]) == 1
    assert store.append("c1", 1, [scheduled("c1")]) == 2
    assert [e.version for e in store.load("c1")] == [1, 2]


def test_stale_append_is_rejected(store):
    store.append("c1", 0, [requested()])
    with pytest.raises(ConcurrencyConflict) as err:
        store.append("c1", 0, [requested()])
    assert (err.value.expected, err.value.actual) == (0, 1)
    assert len(store.load("c1")) == 1


def test_events_of_one_command_land_together_or_not_at_all(store):
    store.append("c1", 0, [requested()])
    # The second event is illegal (never scheduled), so neither may be written.
    with pytest.raises(TransitionNotAllowed):
        store.append("c1", 1, [scheduled("c1"), started("c1", step="transcribe")])
    assert types(store.load("c1")) == ["CourseRequested"]
    assert store.head("c1").version == 1


def test_follow_ups_decided_from_the_new_head_land_in_the_same_append(store):
    seen: list[tuple[int, str]] = []

    def then(snapshot):
        seen.append((snapshot["version"], snapshot["status"]))
        return [scheduled("c1")] if snapshot["status"] == "requested" else []

    assert store.append("c1", 0, [requested()], then=then) == 2
    assert seen[-1] == (1, "requested")  # it saw the request folded in, inside the append
    assert types(store.load("c1")) == ["CourseRequested", "TaskScheduled"]
    assert store.head("c1").version == 2
    verify("c1", store.load("c1"), store.head("c1"))
    assert store.append("c1", 2, [started("c1")], then=then) == 3  # nothing to follow


def test_a_refused_follow_up_takes_its_append_with_it(store):
    store.append("c1", 0, [requested()])

    def broken(snapshot):
        return [started("c1", step="transcribe")]  # never scheduled: illegal

    with pytest.raises(TransitionNotAllowed):
        store.append("c1", 1, [scheduled("c1")], then=broken)
    assert types(store.load("c1")) == ["CourseRequested"]
    assert store.head("c1").version == 1


def test_head_is_written_with_the_events(store):
    v = one_step_history(store, "c1")
    head = store.head("c1")
    assert head.version == v == 4
    assert head.status == "running"
    assert head.last_hash == store.load("c1")[-1].hash
    assert dict(head.snapshot) == fold(store.load("c1")).to_snapshot()


def test_history_verifies(store):
    one_step_history(store, "c1")
    assert verify("c1", store.load("c1"), store.head("c1")).events == 4


def test_load_by_range(store):
    one_step_history(store, "c1")
    assert [e.version for e in store.load("c1", after=2)] == [3, 4]
    assert [e.version for e in store.load("c1", after=1, until=3)] == [2, 3]
    assert store.load("nobody") == []
    assert store.head("nobody") is None


def test_quiet_lists_only_active_courses_older_than_a_time(store):
    store.append("old", 0, [new(requested().event, T0)])
    store.append("new", 0, [new(requested().event, T0 + 600)])
    assert list(store.quiet(iso(T0 + 300))) == ["old"]
    assert sorted(store.quiet(iso(T0 + 900))) == ["new", "old"]


def test_moved_lists_active_courses_changed_since_a_time_with_their_versions(store):
    store.append("old", 0, [new(requested().event, T0)])
    store.append("new", 0, [new(requested().event, T0 + 600)])
    store.append("new", 1, [new(CourseCancelled(reason="r"), T0 + 700)])
    store.append("newer", 0, [new(requested().event, T0 + 650)])
    store.append("newer", 1, [new(scheduled("newer").event, T0 + 800)])
    assert list(store.moved(iso(T0 + 300))) == [("newer", 2)]  # "new" ended: cancelled
    assert list(store.moved(iso(T0))) == [("old", 1), ("newer", 2)]
    assert list(store.moved(iso(T0 + 900))) == []


def test_courses_lists_heads(store):
    store.append("a", 0, [requested()])
    store.append("b", 0, [requested()])
    assert sorted(h.course_id for h in store.courses()) == ["a", "b"]
    assert [h.course_id for h in store.courses(status="completed")] == []


def test_scan_yields_every_history(store):
    one_step_history(store, "a")
    store.append("b", 0, [requested()])
    found = {cid: len(events) for cid, events in store.scan()}
    assert found == {"a": 4, "b": 1}


def test_invalid_event_data_is_refused(store):
    store.append("c1", 0, [requested()])
    store.append("c1", 1, [scheduled("c1")])
    bad = new(
        TaskSucceeded(
            task="prepare_video",
            idempotency_key="c1:prepare_video:1",
            attempt=0,
            outputs={},
            summary={},
            duration_ms=-5,
        )
    )
    with pytest.raises(ValueError, match="attempt"):
        store.append("c1", 2, [bad])
    assert store.head("c1").version == 2


def test_oversized_event_is_refused_with_a_clear_error(store):
    store.append("c1", 0, [requested()])
    store.append("c1", 1, [scheduled("c1")])
    store.append("c1", 2, [started("c1")])
    huge = new(
        TaskSucceeded(
            task="prepare_video",
            idempotency_key="c1:prepare_video:1",
            attempt=1,
            outputs={},
            summary={"blob": "x" * 1_000_000},
            duration_ms=1,
        )
    )
    with pytest.raises(EventTooLarge, match="artifact storage"):
        store.append("c1", 3, [huge])
    assert store.head("c1").version == 3


def test_concurrent_appends_have_exactly_one_winner(store):
    store.append("c1", 0, [requested()])
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            store.append("c1", 1, [scheduled("c1")])
            results.append("won")
        except ConcurrencyConflict:
            results.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["won"]
    assert [e.version for e in store.load("c1")] == [1, 2]
