"""The audit over several processes finds exactly what the audit in one process finds."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bridge.ops.replay import audit_all, parallel_workers
from bridge.tooling.bench import course_commands
from statemachine.store.sqlite import RawSnapshot, SqliteStore, same_snapshot

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path):
    store = SqliteStore(tmp_path / "events.db")
    for i in range(12):
        course_id = f"c{i:02d}"
        version = 0
        for batch in course_commands(course_id, shards=2):
            version = store.append(course_id, version, batch)
    yield store
    store.close()


def tamper(store, sql, *args):
    with sqlite3.connect(store.path) as conn:
        conn.execute(sql, args)


# Forked workers only from a process with one thread (and a test run may leave others
# behind): the audit over several processes runs in a fresh interpreter.
AUDIT = """
import json, sys
from bridge.ops.replay import audit_all, parallel_workers
from statemachine.store.sqlite import SqliteStore
store, workers = SqliteStore(sys.argv[1]), int(sys.argv[2])
assert parallel_workers(store, workers) == workers, "the path under test is not taken"
print(json.dumps([v.as_dict() for v in audit_all(store, workers=workers)]))
"""


def verdicts(store, workers):
    if workers == 1:
        return [v.as_dict() for v in audit_all(store, workers=1)]
    done = subprocess.run(
        [sys.executable, "-c", AUDIT, store.path, str(workers)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_small_stores_and_memory_stores_are_audited_in_this_process(store):
    assert parallel_workers(store) == 1  # 12 courses: not worth the processes
    assert parallel_workers(SqliteStore(), 4) == 1


def test_an_intact_store_verifies_alike(store):
    one = verdicts(store, 1)
    assert len(one) == 12 and all(v["ok"] for v in one)
    assert verdicts(store, 2) == verdicts(store, 3) == one


def test_every_kind_of_damage_is_found_alike(store):
    body = "SELECT body FROM events WHERE course_id=? AND version=?"
    with sqlite3.connect(store.path) as conn:
        edited = conn.execute(body, ("c01", 7)).fetchone()[0].replace(b'"bridge"', b'"mallory"')
        rehashed = (
            conn.execute(body, ("c05", 4)).fetchone()[0].replace(b'"attempt":1', b'"attempt":2')
        )
    tamper(store, "UPDATE events SET body=? WHERE course_id='c01' AND version=7", edited)
    tamper(
        store,
        "UPDATE events SET body=?, hash=? WHERE course_id='c05' AND version=4",
        rehashed,
        hashlib.sha256(rehashed).hexdigest(),
    )
    tamper(store, "DELETE FROM events WHERE course_id='c03' AND version=10")
    last = "SELECT max(version) FROM events WHERE course_id='c07'"
    tamper(store, f"DELETE FROM events WHERE course_id='c07' AND version=({last})")
    running = "replace(snapshot, 'completed', 'running')"
    tamper(store, f"UPDATE courses SET snapshot={running} WHERE course_id='c08'")
    tamper(store, "DELETE FROM events WHERE course_id='c10'")  # a head with no history
    tamper(store, "DELETE FROM courses WHERE course_id='c11'")  # a history with no head
    one = verdicts(store, 1)
    bad = {v["course_id"]: v["first_bad_version"] for v in one if not v["ok"]}
    assert set(bad) == {"c01", "c03", "c05", "c07", "c08", "c10"}
    assert bad["c01"] == 7 and bad["c05"] == 5 and bad["c03"] == 10 and bad["c10"] == 1
    assert verdicts(store, 2) == verdicts(store, 3) == verdicts(store, 12) == one


def test_an_unreadable_event_fails_its_course_alike(store):
    # The scan hands out each course's rows undecoded: a row that does not decode fails the
    # course it is stored under, and the audit goes on with the others.
    tamper(store, "UPDATE events SET body=x'7b6e6f' WHERE course_id='c04' AND version=3")
    one = verdicts(store, 1)
    assert [v["course_id"] for v in one] == [f"c{i:02d}" for i in range(12)]
    bad = [v for v in one if not v["ok"]]
    assert [(v["course_id"], v["first_bad_version"]) for v in bad] == [("c04", 3)]
    assert bad[0]["problem"] == "stored bytes are not a valid envelope"
    assert verdicts(store, 2) == verdicts(store, 4) == one


def test_a_head_written_in_another_key_order_still_matches(store):
    head = store.head("c02")
    acc = dict(head.snapshot)
    reordered = orjson.dumps(json.loads(json.dumps(acc, sort_keys=True)))
    assert reordered != orjson.dumps(acc)
    assert same_snapshot(RawSnapshot(reordered), acc)
    assert not same_snapshot(RawSnapshot(reordered), {**acc, "status": "running"})
    tamper(store, "UPDATE courses SET snapshot=? WHERE course_id='c02'", reordered)
    assert all(v["ok"] for v in verdicts(store, 2))
