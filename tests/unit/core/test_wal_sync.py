"""Deferred WAL sync: inside a unit of work SQLite commits without fsync and the unit syncs the
WAL once, before it ends and before anything is dispatched; outside a unit nothing changes."""

from __future__ import annotations

import os
import threading

import pytest

from bridge.core import Bridge
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.bench import _unlimit as unlimit
from bridge.tooling.synthetic import noop_steps
from statemachine.audit import verify
from statemachine.pipeline import default_pipeline
from statemachine.store import wal_sync
from statemachine.store.memory import MemoryStore
from statemachine.store.sqlite import SqliteStore
from tests.factories import requested, scheduled, started, succeeded

FULL, NORMAL = 2, 1  # PRAGMA synchronous values


def mode(store: SqliteStore) -> int:
    with store._conn() as conn:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "events.db")
    yield s
    s.close()


def test_outside_a_unit_every_commit_is_synced_by_sqlite(store):
    store.append("c1", 0, [requested()])
    assert mode(store) == FULL
    assert store._wal.pending() == 0


def test_a_unit_syncs_once_for_all_its_appends(store):
    wal = store._wal
    before = wal.syncs
    with store.deferring():
        store.append("c1", 0, [requested()])
        store.append("c1", 1, [scheduled("c1")])
        store.append("c1", 2, [started("c1")])
        assert mode(store) == NORMAL
        assert wal.pending() == 3  # committed and readable, not yet on disk
        assert store.head("c1").version == 3
    assert wal.pending() == 0
    assert wal.syncs == before + 1
    store.append("c1", 3, [succeeded("c1")])  # and back to FULL after it
    assert mode(store) == FULL
    verify("c1", store.load("c1"), store.head("c1"))


def test_a_projection_rewrite_after_a_deferred_append_is_synced_again(store):
    with store.deferring():
        store.append("c1", 0, [requested()])
    assert mode(store) == NORMAL  # the thread's connection, as the unit left it
    head = store.head("c1")
    assert store.replace_projections("c1", dict(head.snapshot))
    assert mode(store) == FULL  # outside a unit: SQLite syncs that commit itself
    assert store._wal.pending() == 0


def test_sync_inside_a_unit_covers_what_was_committed_so_far(store):
    wal = store._wal
    with store.deferring():
        store.append("c1", 0, [requested()])
        store.sync()
        assert wal.pending() == 0
        store.append("c1", 1, [scheduled("c1")])
        assert wal.pending() == 1
    assert wal.pending() == 0


def test_nested_units_sync_when_the_outermost_ends(store):
    wal = store._wal
    with store.deferring():
        with store.deferring():
            store.append("c1", 0, [requested()])
        assert wal.pending() == 1
    assert wal.pending() == 0


def test_a_failing_unit_still_syncs_what_it_committed(store):
    with pytest.raises(RuntimeError, match="boom"), store.deferring():
        store.append("c1", 0, [requested()])
        raise RuntimeError("boom")
    assert store._wal.pending() == 0


def test_a_wal_removed_by_the_last_close_needs_no_sync(tmp_path):
    wal = wal_sync.WalSync(str(tmp_path / "gone.db"))
    wal.committed()
    assert not os.path.exists(wal.wal)
    wal.sync()  # SQLite checkpointed and synced it before removing it
    assert wal.pending() == 0


def test_normal_mode_has_nothing_to_defer(tmp_path):
    store = SqliteStore(tmp_path / "events.db", synchronous="NORMAL")
    with store.deferring():
        store.append("c1", 0, [requested()])
        assert mode(store) == NORMAL
    store.sync()
    assert store._wal is None
    store.close()


def test_the_bridge_syncs_before_anything_is_dispatched(store):
    seen: list[int] = []

    class Spy:
        def dispatch(self, request) -> None:
            seen.append(store._wal.pending())

    bridge = Bridge(store, Spy(), default_pipeline(), VirtualClock())
    bridge.ingest({"videoUri": "gs://b/l.mp4", "title": "T"}, message_id="m1")
    assert seen == [0]  # the request and its first task were on disk before the dispatch
    assert store._wal.syncs >= 1


def test_a_delivery_is_one_unit_one_sync(tmp_path):
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    rt = embedded(tmp_path, settings=settings, steps=noop_steps(default_pipeline()))
    unlimit(rt)  # no-op steps: the queues' rate limits would only make the test slow
    wal = wal_sync.for_file(str(tmp_path / "events.db"))
    syncs_before = wal.syncs
    ids = [
        rt.bridge.ingest({"videoUri": "gs://b/l.mp4", "title": "T"}, message_id=f"m{i}")
        for i in range(3)
    ]
    rt.dispatcher.start(1)
    assert rt.dispatcher.wait_idle(timeout=60)
    rt.dispatcher.stop()
    deliveries = rt.dispatcher.stats.deliveries
    events = sum(len(rt.store.load(c)) for c in ids)
    for c in ids:
        assert rt.store.head(c).status == "completed"
        verify(c, rt.store.load(c), rt.store.head(c))
    assert wal.pending() == 0
    # at most one fsync per delivery and per request, where FULL alone made one per append
    assert wal.syncs - syncs_before <= deliveries + len(ids) < events
    rt.close()


# -- units that answer later (group commit) ----------------------------------------------------
def test_a_unit_that_answers_later_does_so_after_the_fsync_covering_it(store):
    wal = store._wal
    seen: list[tuple[str, int, str]] = []
    answered = threading.Event()

    def note(what: str) -> None:
        seen.append((what, wal.pending(), threading.current_thread().name))

    def then() -> None:
        note("answer")
        answered.set()

    with store.deferring(then=then):
        store.append("c1", 0, [requested()])
        store.when_durable(lambda: note("dispatch"))
        assert seen == []  # queued: neither the dispatch nor the answer before the fsync
    assert answered.wait(10)
    syncer = "coursegen-wal-sync"
    assert seen == [("dispatch", 0, syncer), ("answer", 0, syncer)]


def test_units_that_end_while_a_sync_runs_share_the_next_one(store):
    wal = store._wal
    answers: list[int] = []
    before = wal.syncs
    with wal._turn:  # a sync in progress: nothing can be synced until it ends
        wal._syncing = True
    for i in range(10):
        with store.deferring(then=lambda i=i: answers.append(i)):
            store.append(f"c{i}", 0, [requested()])
    assert answers == [] and wal.pending() == 10
    with wal._turn:
        wal._syncing = False
        wal._turn.notify_all()
    assert wal.drain(10)
    assert answers == list(range(10))  # in order, each after its commit was on disk
    assert wal.syncs == before + 1  # one fsync for the ten units
    assert wal.pending() == 0


def test_a_unit_that_raised_is_not_answered_but_its_dispatches_go_once_durable(store):
    seen: list[str] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        store.deferring(then=lambda: seen.append("answer")),
    ):
        store.append("c1", 0, [requested()])
        store.when_durable(lambda: seen.append(f"dispatch at {store._wal.pending()}"))
        raise RuntimeError("boom")
    assert store._wal.drain(10)
    assert seen == ["dispatch at 0"]


def test_a_unit_with_nothing_to_sync_answers_at_once_on_its_own_thread(store):
    store.append("c1", 0, [requested()])  # synced by SQLite (outside a unit)
    seen: list[str] = []
    with store.deferring(then=lambda: seen.append(threading.current_thread().name)):
        assert store.head("c1").version == 1
    assert seen == [threading.current_thread().name]


def test_a_store_whose_commits_are_durable_answers_at_the_end_of_the_unit():
    memory = MemoryStore()
    seen: list[str] = []
    with memory.deferring(then=lambda: seen.append("answer")):
        memory.append("c1", 0, [requested()])
        memory.when_durable(lambda: seen.append("dispatch"))  # at once: already durable
        assert seen == ["dispatch"]
    assert seen == ["dispatch", "answer"]


def test_the_bridge_dispatches_after_the_fsync_in_a_unit_that_answers_later(store):
    seen: list[tuple[int, str]] = []

    class Spy:
        def dispatch(self, request) -> None:
            seen.append((store._wal.pending(), threading.current_thread().name))

    bridge = Bridge(store, Spy(), default_pipeline(), VirtualClock())
    with store.deferring(then=lambda: None):
        bridge.ingest({"videoUri": "gs://b/l.mp4", "title": "T"}, message_id="m1")
        assert seen == []  # the first task waits for the fsync of the request
    assert store._wal.drain(10)
    assert seen == [(0, "coursegen-wal-sync")]


def test_stores_on_one_file_take_turns_in_this_process(tmp_path):
    one = SqliteStore(tmp_path / "events.db")
    two = SqliteStore(tmp_path / "events.db")
    assert one._writer is two._writer  # no SQLite busy handler (and its sleeps) between them
    one.close()
    two.close()


def test_a_dispatch_waits_for_commits_another_thread_has_not_synced_yet(store):
    # Another unit committed (not yet synced); this one commits nothing but dispatches what
    # that commit scheduled: the dispatch still waits for a sync covering it.
    def other_unit() -> None:
        with store.deferring(then=lambda: None):
            store.append("c1", 0, [requested()])

    wal = store._wal
    with wal._turn:  # hold every sync back
        wal._syncing = True
    worker = threading.Thread(target=other_unit)
    worker.start()
    worker.join(10)
    assert wal.pending() == 1
    seen: list[int] = []
    with store.deferring(then=lambda: None):
        store.when_durable(lambda: seen.append(wal.pending()))
    assert seen == []  # not at once, although this unit wrote nothing
    with wal._turn:
        wal._syncing = False
        wal._turn.notify_all()
    assert wal.drain(10)
    assert seen == [0]
