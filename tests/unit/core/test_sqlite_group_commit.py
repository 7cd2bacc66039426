"""The SQLite store's appends: prepared before the writer lock, and written together by the
thread that gets it (one transaction for every append that waited meanwhile)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from statemachine.audit import verify
from statemachine.errors import ConcurrencyConflict
from statemachine.store.sqlite import SqliteStore
from tests.factories import requested, scheduled


def _queued(store: SqliteStore) -> int:
    assert store._writer is not None
    with store._writer._queued_lock:
        return len(store._writer._queued)


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {condition.__doc__}"
        time.sleep(0.005)


STATEMENTS: list[str] = []


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A store whose connections report every statement they run (``STATEMENTS``)."""
    opened = SqliteStore._open

    def traced(self: SqliteStore) -> sqlite3.Connection:
        conn = opened(self)
        conn.set_trace_callback(STATEMENTS.append)
        return conn

    monkeypatch.setattr(SqliteStore, "_open", traced)
    STATEMENTS.clear()
    s = SqliteStore(tmp_path / "events.db", synchronous="NORMAL")
    yield s
    s.close()


def _apart(store: SqliteStore, n: int) -> list[str]:
    """``n`` course ids whose appends take different course locks (two courses may share
    one, and then the second waits for the first before it queues)."""
    assert store._writer is not None
    courses: dict[int, str] = {}
    for i in range(1000):
        courses.setdefault(id(store._writer.course(f"c{i}")), f"c{i}")
    return list(courses.values())[:n]


def test_appends_that_wait_together_share_one_transaction(store: SqliteStore) -> None:
    courses = _apart(store, 8)
    for c in courses:
        store.append(c, 0, [requested()])
    results: dict[str, object] = {}
    stale = courses[3]  # its append names a version the course is no longer at

    def attempt(course: str) -> None:
        expected = 0 if course == stale else 1
        try:
            results[course] = store.append(course, expected, [scheduled(course)])
        except ConcurrencyConflict as err:
            results[course] = err

    assert store._writer is not None
    with store._writer._thread:  # hold the lock: every append waits behind it
        threads = [threading.Thread(target=attempt, args=(c,)) for c in courses]
        for t in threads:
            t.start()
        _wait_for(lambda: _queued(store) == len(courses) - 1)  # the stale one fails early
        STATEMENTS.clear()
    for t in threads:
        t.join()
    commits = STATEMENTS.count("COMMIT")
    inserts = sum(s.startswith("INSERT INTO events") for s in STATEMENTS)
    assert isinstance(results.pop(stale), ConcurrencyConflict)
    assert results == {c: 2 for c in courses if c != stale}
    assert (commits, inserts) == (1, 7)  # seven appends, one transaction
    for c in courses:
        versions = [e.version for e in store.load(c)]
        assert versions == ([1] if c == stale else [1, 2])
        verify(c, store.load(c), store.head(c))


def test_an_append_refused_inside_a_batch_leaves_the_others_written(store: SqliteStore) -> None:
    """A conflict found under the lock (the head moved after the append was prepared) is that
    append's alone: the others of its transaction commit."""
    a, b = _apart(store, 2)
    for c in (a, b):
        store.append(c, 0, [requested()])
    assert store._writer is not None
    results: dict[str, object] = {}

    def attempt(course: str) -> None:
        try:
            results[course] = store.append(course, 1, [scheduled(course)])
        except ConcurrencyConflict as err:
            results[course] = err

    other = SqliteStore(store.path, synchronous="NORMAL")
    other._writer = None  # it writes as another process would: without this one's locks
    with store._writer._thread:
        threads = [threading.Thread(target=attempt, args=(c,)) for c in (a, b)]
        for t in threads:
            t.start()
        _wait_for(lambda: _queued(store) == 2)
        other.append(a, 1, [scheduled(a)])  # course a moves on after a's append was prepared
    other.close()
    for t in threads:
        t.join()
    assert isinstance(results[a], ConcurrencyConflict)
    assert results[b] == 2
    assert [e.version for e in store.load(a)] == [1, 2]
    assert [e.version for e in store.load(b)] == [1, 2]
    for c in (a, b):
        verify(c, store.load(c), store.head(c))
