"""The bulk audit verifies stored rows without building envelopes (``StoredEvents``): on every
kind of damage it reaches the verdict the envelope-by-envelope check reaches."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bridge.ops.replay import audit_all, check
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.audit import verify
from statemachine.envelope import StoredEvents
from statemachine.pipeline import default_pipeline
from statemachine.store.sqlite import SqliteStore

Damage = Callable[[sqlite3.Connection, str], None]


@pytest.fixture
def two_courses(tmp_path: Path) -> tuple[Path, str, str]:
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    rt = embedded(
        tmp_path, settings=settings, steps=noop_steps(default_pipeline()), clock=VirtualClock()
    )
    ids = [
        rt.bridge.ingest({"videoUri": "gs://b/l.mp4", "title": t}, message_id=t)
        for t in ("first", "second")
    ]
    rt.dispatcher.run_until_idle()
    rt.close()
    first, second = sorted(ids)
    return tmp_path / "events.db", first, second


def _body(conn: sqlite3.Connection, course_id: str, version: int) -> bytes:
    row = conn.execute(
        "SELECT body FROM events WHERE course_id=? AND version=?", (course_id, version)
    ).fetchone()
    return bytes(row[0])


def _set(conn: sqlite3.Connection, course_id: str, version: int, body: bytes, rehash: bool) -> None:
    if rehash:
        conn.execute(
            "UPDATE events SET body=?, hash=? WHERE course_id=? AND version=?",
            (body, hashlib.sha256(body).hexdigest(), course_id, version),
        )
    else:
        conn.execute(
            "UPDATE events SET body=? WHERE course_id=? AND version=?", (body, course_id, version)
        )


def _edited(conn: sqlite3.Connection, c: str) -> None:
    _set(conn, c, 7, _body(conn, c, 7).replace(b'"actor":"bridge"', b'"actor":"mallory"'), False)


def _rehashed(conn: sqlite3.Connection, c: str) -> None:
    _set(conn, c, 4, _body(conn, c, 4).replace(b'"duration_ms":', b'"duration_ms":9'), True)


def _hash_column(conn: sqlite3.Connection, c: str) -> None:
    conn.execute("UPDATE events SET hash=? WHERE course_id=? AND version=3", ("0" * 64, c))


def _deleted(conn: sqlite3.Connection, c: str) -> None:
    conn.execute("DELETE FROM events WHERE course_id=? AND version=10", (c,))


def _last_deleted(conn: sqlite3.Connection, c: str) -> None:
    conn.execute(
        "DELETE FROM events WHERE course_id=? AND version="
        "(SELECT max(version) FROM events WHERE course_id=?)",
        (c, c),
    )


def _not_json(conn: sqlite3.Connection, c: str) -> None:
    _set(conn, c, 6, b"{not json", True)


def _rewritten(conn: sqlite3.Connection, c: str, version: int, change: Callable[[dict], None]):
    """Change one event's document and forge the chain after it (every later prev_hash and
    hash, the head's last hash): only the document's content is wrong."""
    rows = conn.execute(
        "SELECT version, body, hash FROM events WHERE course_id=? AND version>=? ORDER BY version",
        (c, version),
    ).fetchall()
    stale = rows[-1][2]  # the head's last hash before the forgery
    prev = None
    for v, body, _ in rows:
        doc = orjson.loads(body)
        if v == version:
            change(doc)
        if prev is not None:
            doc["prev_hash"] = prev
        raw = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        prev = hashlib.sha256(raw).hexdigest()
        conn.execute(
            "UPDATE events SET body=?, hash=? WHERE course_id=? AND version=?", (raw, prev, c, v)
        )
    conn.execute(
        "UPDATE courses SET last_hash=?, snapshot=replace(snapshot, ?, ?) WHERE course_id=?",
        (prev, stale, prev, c),
    )


def _no_actor(conn: sqlite3.Connection, c: str) -> None:
    _rewritten(conn, c, 1, lambda d: d.pop("actor"))


def _unknown_type(conn: sqlite3.Connection, c: str) -> None:
    _rewritten(conn, c, 5, lambda d: d.update(type="TaskTeleported"))


def _refused(conn: sqlite3.Connection, c: str) -> None:
    _rewritten(conn, c, 1, lambda d: d.update(type="CourseCompleted"))


def _malformed(conn: sqlite3.Connection, c: str) -> None:
    _rewritten(conn, c, 2, lambda d: d["data"].pop("task"))


def _other_course(conn: sqlite3.Connection, c: str) -> None:
    _rewritten(conn, c, 1, lambda d: d.update(course_id="someone-else"))


def _stale_head(conn: sqlite3.Connection, c: str) -> None:
    conn.execute(
        "UPDATE courses SET snapshot=replace(snapshot, 'completed', 'running') WHERE course_id=?",
        (c,),
    )


DAMAGE: dict[str, Damage] = {
    "edited bytes": _edited,
    "edited and rehashed": _rehashed,
    "hash column": _hash_column,
    "deleted event": _deleted,
    "deleted last event": _last_deleted,
    "bytes not JSON": _not_json,
    "no actor": _no_actor,
    "unknown type": _unknown_type,
    "refused event": _refused,
    "malformed data": _malformed,
    "another course's event": _other_course,
    "head differs": _stale_head,
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_the_stored_rows_path_reaches_the_envelope_paths_verdict(two_courses, name):
    path, first, second = two_courses
    with sqlite3.connect(path) as conn:
        DAMAGE[name](conn, first)
    store = SqliteStore(path)
    try:
        by_rows = {v.course_id: v for v in audit_all(store, workers=1)}
        one_by_one = check(store, first)  # store.load: a list of envelopes
    finally:
        store.close()
    assert by_rows[second].ok, by_rows[second]  # the damage stays with its course
    bad = by_rows[first]
    assert not bad.ok and not one_by_one.ok
    assert (bad.first_bad_version, bad.problem) == (
        one_by_one.first_bad_version,
        one_by_one.problem,
    )


def test_an_intact_history_folds_to_the_same_state_either_way(two_courses):
    path, first, _ = two_courses
    store = SqliteStore(path)
    try:
        histories = {c: (events, head) for c, events, head in store.scan_heads()}
        events, head = histories[first]
        assert isinstance(events, StoredEvents)
        by_rows = verify(first, events, head, same=store.same_snapshot)
        loaded = list(store.load(first))
        decoded = verify(first, loaded, head)
    finally:
        store.close()
    assert by_rows == decoded
    assert by_rows.events == len(events) == head.version
    assert list(events) == loaded  # read as envelopes, the rows are what load gives


def test_a_row_that_does_not_decode_fails_its_course_only(two_courses):
    path, first, second = two_courses
    with sqlite3.connect(path) as conn:
        _not_json(conn, first)
    store = SqliteStore(path)
    try:
        verdicts = list(audit_all(store, workers=1))
    finally:
        store.close()
    assert [v.course_id for v in verdicts] == [first, second]
    assert verdicts[0].first_bad_version == 6
    assert verdicts[0].problem == "stored bytes are not a valid envelope"
    assert verdicts[1].ok
