"""The operator commands on the embedded SQLite store: pause, work, resume, cancel, redrive,
stats and rebuild-projections, through the real ``coursegen`` command line."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.pipeline import default_pipeline

ENV = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_SQLITE_SYNCHRONOUS": "NORMAL", "USER": "tester"}


def requested_courses(data: Path, n: int) -> list[str]:
    """Courses requested (and their first task scheduled) by a process that then exits."""
    rt = embedded(data, settings=Settings.from_env(ENV), steps=noop_steps(default_pipeline()))
    try:
        return [
            rt.bridge.ingest({"videoUri": "gs://b/v.mp4", "title": f"T{i}"}, message_id=f"m{i}")
            for i in range(n)
        ]
    finally:
        rt.close()


@pytest.fixture
def cli(tmp_path: Path):
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, [*args, "--data", str(tmp_path)], env=ENV)
        assert result.exit_code == code, result.output
        return result.output

    return run


def status_of(cli, course: str) -> str:
    return json.loads(cli("status", course, "--json"))["status"]


def test_pause_work_resume_and_an_illegal_cancel(tmp_path: Path, cli) -> None:
    first, second = requested_courses(tmp_path, 2)
    out = cli("pause", first, "--reason", "check the video first")
    assert "now paused" in out and "operator:tester" in out
    out = json.loads(cli("work", "--until-idle", "--synthetic", "--json"))
    assert out["recovered"]["courses"] == 2
    assert status_of(cli, second) == "completed"
    assert status_of(cli, first) == "paused"
    out = cli("resume", first, "--reason", "video is fine", "--operator", "ann")
    assert "now running" in out and "coursegen work" in out
    cli("work", "--until-idle", "--synthetic")  # the resumed tasks died with `resume`'s process
    assert status_of(cli, first) == "completed"
    out = cli("cancel", first, "--reason", "oops", code=1)
    assert "it is completed" in out and '"finalize": "succeeded"' in out
    problem = json.loads(cli("cancel", first, "--reason", "oops", "--json", code=1))
    assert (problem["status"], problem["state"]["status"]) == (409, "completed")
    history = json.loads(cli("replay", first, "--json"))
    operator_rows = [r for r in history if "operator:" in json.dumps(r)]
    assert len(operator_rows) == 2


def test_a_reason_is_required(tmp_path: Path, cli) -> None:
    (course,) = requested_courses(tmp_path, 1)
    out = cli("cancel", course, code=2)
    assert "--reason" in out
    assert "no course 'nobody'" in cli("cancel", "nobody", "--reason", "r", code=1)


def test_stats_and_rebuild_projections(tmp_path: Path, cli) -> None:
    courses = requested_courses(tmp_path, 2)  # the AI queue runs 2 tasks a second
    cli("work", "--until-idle", "--synthetic")
    stats = json.loads(cli("stats", "--json"))
    assert [r["variant"] for r in stats["variants"]] == ["cloudtasks"]
    assert stats["variants"][0]["completed"] == 2
    steps = {r["step"]: r for r in stats["steps"]}
    assert next(iter(steps)) == "prepare_video"
    assert steps["prepare_video"]["count"] == 2
    assert steps["prepare_video"]["failure_rate"] == 0
    assert steps["analyze_frames"]["count"] == 8  # four shards per course
    assert json.loads(cli("stats", "--since", "1h", "--json"))["variants"][0]["courses"] == 2
    assert json.loads(cli("stats", "--since", "2999-01-01", "--json"))["variants"] == []
    cli("stats", "--since", "yesterday", code=2)
    text = cli("stats")
    assert re.search(r"prepare_video\s+cloudtasks\s+2\s", text) and "p95_ms" in text
    # Lose the task rows and damage a head: --check sees it, a rebuild repairs it.
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.execute("DELETE FROM tasks")
        db.execute("UPDATE courses SET status = 'running' WHERE course_id = ?", (courses[0],))
    out = json.loads(cli("rebuild-projections", "--check", "--json", code=2))
    assert out["changed"] == 2
    out = json.loads(cli("rebuild-projections", "--json"))
    assert (out["courses"], out["changed"], out["moved"]) == (2, 2, [])
    assert "0 courses' projections differ" in cli("rebuild-projections", "--check")
    assert status_of(cli, courses[0]) == "completed"
