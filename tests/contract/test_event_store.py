"""One contract for every EventStore adapter: memory, SQLite and (with the emulator) Firestore."""

from __future__ import annotations

import threading

import pytest

from statemachine.audit import verify
from statemachine.errors import (
    ConcurrencyConflict,
    EventTooLarge,
    TransitionNotAllowed,
    UnknownCourse,
)
from statemachine.events import CourseCancelled, TaskSucceeded
from statemachine.ports import Tombstone
from statemachine.reducer import fold
from statemachine.timefmt import iso
from tests.factories import (
    T0,
    new,
    one_step_history,
    requested,
    scheduled,
    started,
    succeeded,
    types,
)


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


def _siblings(store) -> None:
    """Two tasks running side by side, the first one's result in (version 6)."""
    store.append("c1", 0, [requested()])
    store.append("c1", 1, [scheduled("c1"), scheduled("c1", step="transcribe", queue="q")])
    store.append("c1", 3, [started("c1"), started("c1", step="transcribe")])
    store.append("c1", 5, [succeeded("c1")])


def test_a_stale_append_goes_after_the_head_when_rebase_says_it_still_holds(store):
    _siblings(store)
    seen: list[int] = []

    def holds(snapshot):
        seen.append(snapshot["version"])
        return snapshot["tasks"]["transcribe"]["status"] == "running"

    # decided at version 5; the sibling's result moved the head to 6 meanwhile
    assert store.append("c1", 5, [succeeded("c1", step="transcribe")], rebase=holds) == 7
    assert seen and seen[-1] == 6
    history = store.load("c1")
    assert [e.version for e in history] == list(range(1, 8))
    assert types(history)[-2:] == ["TaskSucceeded", "TaskSucceeded"]
    verify("c1", history, store.head("c1"))


def test_a_rebase_that_does_not_hold_is_a_conflict(store):
    _siblings(store)
    with pytest.raises(ConcurrencyConflict) as err:
        store.append("c1", 5, [succeeded("c1", step="transcribe")], rebase=lambda s: False)
    assert (err.value.expected, err.value.actual) == (5, 6)
    assert store.head("c1").version == 6


def test_a_rebased_event_the_head_refuses_is_refused(store):
    _siblings(store)
    # prepare_video succeeded at version 6: its result again is illegal after that head
    with pytest.raises(TransitionNotAllowed):
        store.append("c1", 5, [succeeded("c1")], rebase=lambda s: True)
    assert store.head("c1").version == 6


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


# -- purge (retention after archiving) --------------------------------------------------


def ended(store, course_id: str) -> tuple[int, str]:
    """A course run one step and cancelled: an ended course, with task rows; (version, hash)."""
    v = one_step_history(store, course_id)
    v = store.append(course_id, v, [new(CourseCancelled(reason="done with it"))])
    head = store.head(course_id)
    return v, head.last_hash


def test_purge_removes_the_history_and_leaves_a_tombstone(store):
    version, last = ended(store, "gone")
    one_step_history(store, "kept")
    assert store.purge("gone", version=version, last_hash=last, location="file:///a/gone.jsonl")
    assert store.load("gone") == [] and store.head("gone") is None
    assert store.tasks("gone") == []
    assert store.tombstone("gone") == Tombstone("gone", version, last, "file:///a/gone.jsonl")
    assert [t.course_id for t in store.tombstones()] == ["gone"]
    assert store.tombstones(incomplete=True) == []
    assert list(store.course_ids()) == ["kept"]
    assert [c for c, _, _ in store.scan_heads()] == ["kept"]
    assert len(store.load("kept")) == 4 and store.tombstone("kept") is None


def test_purge_again_is_a_no_op(store):
    version, last = ended(store, "gone")
    assert store.purge("gone", version=version, last_hash=last, location="gs://b/gone.jsonl")
    assert not store.purge("gone", version=version, last_hash=last, location="gs://b/gone.jsonl")
    assert [t.location for t in store.tombstones()] == ["gs://b/gone.jsonl"]


def test_purge_of_a_course_that_moved_on_is_refused(store):
    version, last = ended(store, "c1")
    with pytest.raises(ConcurrencyConflict):
        store.purge("c1", version=version - 1, last_hash=last, location="x")
    with pytest.raises(ConcurrencyConflict):
        store.purge("c1", version=version, last_hash="0" * 64, location="x")
    assert len(store.load("c1")) == version and store.tombstone("c1") is None
    store.purge("c1", version=version, last_hash=last, location="x")
    with pytest.raises(ConcurrencyConflict):  # a tombstone of another ending
        store.purge("c1", version=version + 1, last_hash=last, location="x")


def test_an_active_or_unknown_course_is_never_purged(store):
    v = one_step_history(store, "busy")
    with pytest.raises(TransitionNotAllowed):
        store.purge("busy", version=v, last_hash=store.head("busy").last_hash, location="x")
    assert len(store.load("busy")) == 4 and len(store.tasks("busy")) == 1
    with pytest.raises(UnknownCourse):
        store.purge("nobody", version=1, last_hash="0" * 64, location="x")


def test_a_long_history_is_purged_whole(store):
    """More documents than one Firestore commit takes (its purge goes in batches)."""
    v = store.append("long", 0, [requested()])
    v = store.append("long", v, [scheduled("long")])
    for _ in range(2):  # redeliveries after lost answers: 480 starts
        v = store.append("long", v, [started("long", attempt=a) for a in range(1, 241)])
    v = store.append("long", v, [new(CourseCancelled(reason="enough"))])
    assert store.purge("long", version=v, last_hash=store.head("long").last_hash, location="x")
    assert store.load("long") == [] and store.tasks("long") == []
    assert store.tombstone("long").complete
