"""Auditor replay: tampering with a stored history is detected and named, through the CLI too."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.pipeline import default_pipeline


@pytest.fixture
def finished(tmp_path):
    """A completed course in a SQLite store under tmp_path; (data dir, course id)."""
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    rt = embedded(
        tmp_path, settings=settings, steps=noop_steps(default_pipeline()), clock=VirtualClock()
    )
    course_id = rt.bridge.ingest({"videoUri": "gs://b/l.mp4", "title": "Audit"}, message_id="m1")
    rt.dispatcher.run_until_idle()
    assert rt.store.head(course_id).status == "completed"
    rt.close()
    return tmp_path, course_id


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def db(data):
    return sqlite3.connect(data / "events.db")


def test_an_intact_history_verifies(finished):
    data, course_id = finished
    result = cli("replay", course_id, "--verify", "--json", "--data", str(data))
    assert result.exit_code == 0
    assert json.loads(result.output)["ok"] is True
    assert cli("audit", "--data", str(data)).exit_code == 0


def test_editing_an_events_data_is_detected_at_that_version(finished):
    data, course_id = finished
    with db(data) as conn:
        body = conn.execute(
            "SELECT body FROM events WHERE course_id=? AND version=7", (course_id,)
        ).fetchone()[0]
        forged = body.replace(b'"actor":"bridge"', b'"actor":"mallory"')
        assert forged != body
        conn.execute(
            "UPDATE events SET body=? WHERE course_id=? AND version=7", (forged, course_id)
        )
    result = cli("replay", course_id, "--verify", "--json", "--data", str(data))
    assert result.exit_code == 2
    verdict = json.loads(result.output)
    assert verdict["first_bad_version"] == 7 and "edited" in verdict["problem"]


def test_rehashing_an_edited_event_breaks_the_next_link(finished):
    import hashlib

    data, course_id = finished
    with db(data) as conn:
        body = conn.execute(
            "SELECT body FROM events WHERE course_id=? AND version=4", (course_id,)
        ).fetchone()[0]
        forged = body.replace(b'"duration_ms":', b'"duration_ms":9')
        conn.execute(
            "UPDATE events SET body=?, hash=? WHERE course_id=? AND version=4",
            (forged, hashlib.sha256(forged).hexdigest(), course_id),
        )
    verdict = json.loads(cli("replay", course_id, "--verify", "--json", "--data", str(data)).output)
    assert verdict["first_bad_version"] == 5 and "prev_hash" in verdict["problem"]


def test_deleting_an_event_is_detected(finished):
    data, course_id = finished
    with db(data) as conn:
        conn.execute("DELETE FROM events WHERE course_id=? AND version=10", (course_id,))
    result = cli("replay", course_id, "--verify", "--data", str(data))
    assert result.exit_code == 2
    assert "version 10" in result.output and "missing or out of order" in result.output


def test_deleting_the_last_event_is_detected_by_the_head(finished):
    data, course_id = finished
    with db(data) as conn:
        last = conn.execute(
            "SELECT max(version) FROM events WHERE course_id=?", (course_id,)
        ).fetchone()[0]
        conn.execute("DELETE FROM events WHERE course_id=? AND version=?", (course_id, last))
    verdict = json.loads(cli("replay", course_id, "--verify", "--json", "--data", str(data)).output)
    assert verdict["ok"] is False and verdict["first_bad_version"] == last


def test_swapping_two_events_is_detected(finished):
    data, course_id = finished
    with db(data) as conn:
        rows = conn.execute(
            "SELECT version, body, hash FROM events WHERE course_id=? AND "
            "version IN (5, 6) ORDER BY version",
            (course_id,),
        ).fetchall()
        for (version, _, _), (_, body, h) in zip(rows, reversed(rows), strict=True):
            conn.execute(
                "UPDATE events SET body=?, hash=? WHERE course_id=? AND version=?",
                (body, h, course_id, version),
            )
    verdict = json.loads(cli("replay", course_id, "--verify", "--json", "--data", str(data)).output)
    assert verdict["first_bad_version"] == 5


def test_audit_names_every_bad_course(finished):
    data, course_id = finished
    with db(data) as conn:
        conn.execute(
            "UPDATE courses SET snapshot=replace(snapshot, 'completed', 'running') "
            "WHERE course_id=?",
            (course_id,),
        )
    result = cli("audit", "--json", "--data", str(data))
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["failed"] == 1 and report["failures"][0]["course_id"] == course_id


def test_timeline_state_at_and_export(finished):
    data, course_id = finished
    rows = json.loads(cli("replay", course_id, "--json", "--data", str(data)).output)
    assert rows[0]["event"] == "CourseRequested" and rows[-1]["event"] == "CourseCompleted"
    assert {"time", "version", "event", "actor", "task", "attempt", "duration_ms"} <= set(rows[0])
    at2 = json.loads(cli("replay", course_id, "--at", "2", "--data", str(data)).output)
    assert at2["version"] == 2 and list(at2["tasks"]) == ["prepare_video"]
    exported = cli("replay", course_id, "--export", "jsonl", "--data", str(data)).output
    lines = [json.loads(line) for line in exported.splitlines()]
    assert len(lines) == len(rows) and lines[0]["stored"].startswith("{")
    assert cli("replay", course_id, "--at", "999", "--data", str(data)).exit_code != 0


def test_unknown_course_is_a_clear_error(finished):
    data, _ = finished
    result = CliRunner().invoke(main, ["replay", "nope", "--data", str(data)])
    assert result.exit_code != 0 and "no course 'nope'" in result.output
