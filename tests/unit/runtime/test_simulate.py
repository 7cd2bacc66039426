"""The fault-injection simulation: every invariant holds under faults, failures are the ones
injected, runs are deterministic, and the checker does catch a broken history."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.tooling.simulate import Chaos, Faults, check, simulate
from statemachine.pipeline import default_pipeline
from statemachine.store.sqlite import SqliteStore

from .conftest import REQUEST, settings

FAULTS = Faults(seed=7, fail_rate=0.2, duplicate_rate=0.1, drop_notify_rate=0.05, slow_rate=0.02)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return simulate(200, FAULTS, data_dir=tmp_path_factory.mktemp("sim"))


def test_every_invariant_holds_under_faults(report):
    assert report["ok"] is True
    assert report["invariants"] == {
        "every_course_completed_or_failed_by_exhaustion": "held",
        "no_effect_ran_twice_for_one_key": "held",
        "no_result_recorded_twice_for_one_key": "held",
        "every_history_verifies": "held",
    }
    assert report["courses"] == 200
    assert sum(report["statuses"].values()) == 200


def test_the_faults_really_happened_and_were_absorbed(report):
    counts = report["counts"]
    injected = counts["injected"]
    assert injected["transient"] > 0 and injected["slow"] > 0
    assert injected["duplicate"] > 0 and injected["lost_notification"] > 0
    assert counts["retries"] > 0
    assert counts["duplicates_suppressed"] > 0
    assert counts["reconciler_rescues"] > 0
    assert counts["deadline_overruns"] == injected["slow"]
    assert counts["lost_notifications"] == injected["lost_notification"]
    # 11 results a completed course (4 frame shards); retries make more attempts than results
    assert counts["tasks"] >= 11 * report["statuses"].get("completed", 0)
    assert counts["attempts"] > counts["tasks"]
    assert counts["virtual_s"] > 600 and counts["wall_s"] < 30


def test_failed_courses_all_come_from_injected_failures(tmp_path):
    faults = Faults(
        seed=7,
        fail_rate=0.2,
        permanent_rate=0.05,
        duplicate_rate=0.1,
        drop_notify_rate=0.05,
        slow_rate=0.02,
    )
    report = simulate(200, faults, data_dir=tmp_path, store="sqlite")
    assert report["ok"] is True
    failed = report["statuses"].get("failed", 0)
    assert failed > 0

    # Attribute each failure from the stored history itself, not from the simulator's notes.
    store = SqliteStore(tmp_path / "events.db")
    causes = []
    for head in store.courses(status="failed"):
        task = head.snapshot["failure"]["task"]
        events = [e for e in store.load(head.course_id) if e.data.get("task") == task]
        permanent = [
            e
            for e in events
            if e.type == "TaskFailed"
            and not e.data["retryable"]
            and e.data["message"].startswith("injected permanent failure")
        ]
        exhausted = [e for e in events if e.type == "TaskExhausted"]
        assert permanent or exhausted, f"{head.course_id} failed without an injected cause"
        causes.append("permanent" if permanent else "exhausted")
    store.close()
    assert len(causes) == failed
    assert causes.count("permanent") <= report["counts"]["injected"]["permanent"]


def test_the_same_seed_gives_the_same_run(tmp_path):
    first = simulate(60, FAULTS, data_dir=tmp_path / "a")
    second = simulate(60, FAULTS, data_dir=tmp_path / "b")
    other = simulate(60, Faults(**{**FAULTS.__dict__, "seed": 8}), data_dir=tmp_path / "c")

    def without_wall(r: dict) -> dict:
        return {k: v for k, v in r["counts"].items() if k != "wall_s"}

    assert without_wall(first) == without_wall(second)
    assert first["statuses"] == second["statuses"]
    assert without_wall(first) != without_wall(other)


# -- the checker can fail -----------------------------------------------------------------
@pytest.fixture
def finished(tmp_path: Path):
    """Three courses run to the end on a SQLite store, with the simulator's chaos (no faults)."""
    clock = VirtualClock()
    chaos = Chaos(Faults(seed=1), default_pipeline(), clock)
    store = SqliteStore(tmp_path / "events.db")
    rt = embedded(tmp_path, settings=settings(), steps=chaos.steps(), clock=clock, store=store)
    ids = [rt.bridge.ingest(REQUEST, message_id=f"m{n}") for n in range(3)]
    rt.dispatcher.run_until_idle()
    yield rt, ids, chaos
    rt.close()


def test_the_checker_passes_a_clean_run(finished):
    rt, ids, chaos = finished
    report = check(rt, ids, chaos)
    assert report["ok"] is True
    assert report["statuses"] == {"completed": 3}


def test_the_checker_catches_an_edited_event(finished, tmp_path):
    rt, ids, chaos = finished
    victim = ids[1]
    with sqlite3.connect(tmp_path / "events.db") as db:
        (body,) = db.execute(
            "SELECT body FROM events WHERE course_id = ? AND version = 1", (victim,)
        ).fetchone()
        edited = bytes(body).replace(b"Rivers", b"Rivers (edited)")
        assert edited != bytes(body)
        db.execute(
            "UPDATE events SET body = ? WHERE course_id = ? AND version = 1", (edited, victim)
        )

    report = check(rt, ids, chaos)

    assert report["ok"] is False
    (problem,) = report["invariants"]["every_history_verifies"]
    assert problem.startswith(victim)
    assert "edited" in problem
    assert report["invariants"]["no_effect_ran_twice_for_one_key"] == "held"


def test_the_checker_catches_a_deleted_event(finished, tmp_path):
    rt, ids, chaos = finished
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.execute("DELETE FROM events WHERE course_id = ? AND version = 3", (ids[0],))

    report = check(rt, ids, chaos)

    assert report["ok"] is False
    (problem,) = report["invariants"]["every_history_verifies"]
    assert problem.startswith(ids[0])


def test_the_checker_catches_an_effect_run_twice_and_a_course_left_running(finished):
    rt, ids, chaos = finished
    key = f"{ids[0]}:transcribe:1"
    chaos.effects[key] += 1  # as if a duplicate delivery had run the step again
    stuck = rt.bridge.ingest({**REQUEST, "title": "Never delivered"}, message_id="stuck")

    report = check(rt, [*ids, stuck], chaos)

    assert report["ok"] is False
    assert report["invariants"]["no_effect_ran_twice_for_one_key"] == [key]
    assert report["invariants"]["every_course_completed_or_failed_by_exhaustion"] == [
        f"{stuck}: ended running"
    ]


# -- the command line -----------------------------------------------------------------------
def test_coursegen_simulate_prints_json_and_exits_0():
    result = CliRunner().invoke(main, ["simulate", "--courses", "50", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["courses"] == 50
    assert set(report["invariants"].values()) == {"held"}


def test_coursegen_simulate_refuses_a_rate_outside_0_to_1():
    result = CliRunner().invoke(main, ["simulate", "--courses", "1", "--fail-rate", "1.5"])
    assert result.exit_code == 2
    assert "--fail-rate must be between 0 and 1" in result.output
