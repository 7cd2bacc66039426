"""The Firestore EventStore on the emulator, beyond the shared contract: races, limits, layout."""

from __future__ import annotations

import threading

import pytest

from statemachine.errors import ConcurrencyConflict, EventTooLarge
from statemachine.events import TaskSucceeded
from statemachine.store.firestore import FirestoreStore, event_id
from statemachine.timefmt import iso
from tests.emulators import fresh_firestore_store, need
from tests.factories import T0, new, one_step_history, requested, scheduled, started

pytestmark = pytest.mark.emulator


@pytest.fixture
def store() -> FirestoreStore:
    need("FIRESTORE_EMULATOR_HOST")
    return fresh_firestore_store()


def race(store: FirestoreStore, course_id: str, n: int, *, apart: bool = False) -> list[str]:
    """``n`` threads append at version 1 at once; ``apart``: each through a store of its own
    (a process of its own, as far as the adapter knows: no turn-taking, real contention)."""
    results: list[str] = []
    barrier = threading.Barrier(n)
    stores = [FirestoreStore(client=store.client) if apart else store for _ in range(n)]

    def attempt(mine: FirestoreStore) -> None:
        barrier.wait()
        try:
            mine.append(course_id, 1, [scheduled(course_id)])
            results.append("won")
        except ConcurrencyConflict as err:
            assert (err.expected, err.actual) == (1, 2)
            results.append("conflict")

    threads = [threading.Thread(target=attempt, args=(mine,)) for mine in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("round_", range(3))
def test_eight_racing_appends_have_one_winner_and_seven_conflicts(store, round_):
    course = f"race{round_}"
    store.append(course, 0, [requested()])
    assert sorted(race(store, course, 8)) == ["conflict"] * 7 + ["won"]
    assert [e.version for e in store.load(course)] == [1, 2]
    assert store.head(course).version == 2


@pytest.mark.parametrize("round_", range(3))
def test_racing_appends_from_separate_stores_have_one_winner(store, round_):
    # Firestore's own contention (aborted transactions, retried) sorted from a real conflict.
    course = f"apart{round_}"
    store.append(course, 0, [requested()])
    assert sorted(race(store, course, 3, apart=True)) == ["conflict"] * 2 + ["won"]
    assert [e.version for e in store.load(course)] == [1, 2]


def test_an_event_near_one_mebibyte_is_refused_before_firestore_sees_it(store):
    one_step = "c1"
    store.append(one_step, 0, [requested()])
    store.append(one_step, 1, [scheduled(one_step)])
    store.append(one_step, 2, [started(one_step)])
    huge = new(
        TaskSucceeded(
            task="prepare_video",
            idempotency_key="c1:prepare_video:1",
            attempt=1,
            outputs={},
            summary={"blob": "y" * (1024 * 1024 - 2048)},
            duration_ms=1,
        )
    )
    with pytest.raises(EventTooLarge) as err:
        store.append(one_step, 3, [huge])
    assert err.value.limit == 900 * 1024
    assert err.value.size > err.value.limit
    assert store.head(one_step).version == 3
    assert len(store.load(one_step)) == 3


def test_documents_have_the_documented_layout(store):
    one_step_history(store, "c1")
    head = store.client.collection("courses").document("c1").get().to_dict()
    assert {"status", "version", "last_hash", "updated_at", "variant", "snapshot"} <= set(head)
    assert head["version"] == 4
    ids = [d.id for d in store.client.collection("courses/c1/events").stream()]
    assert (
        ids
        == [event_id(v) for v in (1, 2, 3, 4)]
        == ["0000000001", "0000000002", "0000000003", "0000000004"]
    )
    doc = store.client.document("courses/c1/events/0000000001").get().to_dict()
    assert isinstance(doc["body"], bytes)
    assert doc["type"] == "CourseRequested"
    assert doc["hash"] == store.load("c1")[0].hash


def test_an_existing_event_document_is_a_conflict_not_an_overwrite(store):
    store.append("c1", 0, [requested()])
    # A stray event document at version 2 (e.g. a writer that skipped the head).
    store.client.document("courses/c1/events/0000000002").set({"version": 2})
    with pytest.raises(ConcurrencyConflict):
        store.append("c1", 1, [scheduled("c1")])
    assert store.head("c1").version == 1


def test_load_orders_by_version_past_nine(store):
    v = store.append("c1", 0, [requested()])
    for shard in range(11):
        v = store.append(
            "c1",
            v,
            [scheduled("c1", step="analyze_frames", queue="ai-analysis-queue", shard=shard)],
        )
    assert [e.version for e in store.load("c1")] == list(range(1, 13))
    assert [e.version for e in store.load("c1", after=9, until=11)] == [10, 11]


def test_quiet_orders_by_last_activity_and_honours_the_limit(store):
    for i, course in enumerate(["c", "a", "b"]):
        store.append(course, 0, [new(requested().event, T0 + i)])
    assert list(store.quiet(iso(T0 + 10))) == ["c", "a", "b"]
    assert list(store.quiet(iso(T0 + 10), limit=2)) == ["c", "a"]


def test_scan_pages_through_every_course(store):
    paged = FirestoreStore(client=store.client, page_size=2)
    for course in ["a", "b", "c", "d", "e"]:
        paged.append(course, 0, [requested()])
    assert [cid for cid, events in paged.scan() if len(events) == 1] == ["a", "b", "c", "d", "e"]


def test_a_purge_interrupted_after_its_first_transaction_is_finished_by_the_next(
    store: FirestoreStore,
) -> None:
    """A long purge: the first transaction drops the head and writes an incomplete tombstone;
    a crash before the batches leaves event documents. The next purge deletes them."""
    from statemachine.events import CourseCancelled
    from statemachine.store.firestore import _PURGE_IN_ONE, _purge_in

    v = store.append("long", 0, [requested()])
    v = store.append("long", v, [scheduled("long")])
    v = store.append("long", v, [started("long", attempt=a) for a in range(1, _PURGE_IN_ONE)])
    v = store.append("long", v, [new(CourseCancelled(reason="enough"))])
    last = store.load("long")[-1].hash
    head_ref = store._courses.document("long")
    purged, tomb = _purge_in(  # what purge does first; the "crash" is stopping here
        store.client.transaction(),
        head_ref,
        store._tombstones.document("long"),
        "long",
        (v, last, "gs://b/long.jsonl"),
    )
    assert purged and not tomb.complete
    assert store.head("long") is None and store.course_ids() == []
    assert len(list(head_ref.collection("events").stream())) == v  # left behind
    assert [t.course_id for t in store.tombstones(incomplete=True)] == ["long"]
    assert not store.purge("long", version=v, last_hash=last, location="gs://b/long.jsonl")
    assert list(head_ref.collection("events").stream()) == []
    assert list(head_ref.collection("tasks").stream()) == []
    assert store.tombstones(incomplete=True) == [] and store.tombstone("long").complete
