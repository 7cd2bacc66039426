"""Several processes on one SQLite store (``coursegen work --processes``): they open a new
database at once, append side by side, race on one course, and share out its courses."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.ops.replay import audit_all
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.bench import bench_pipeline, course_commands
from bridge.tooling.synthetic import noop_steps
from statemachine.errors import ConcurrencyConflict
from statemachine.pipeline import default_pipeline
from statemachine.store.sqlite import SqliteStore

SPAWN = multiprocessing.get_context("spawn")  # fresh interpreters: nothing of the test's own


def _write_courses(path: str, prefix: str, courses: int) -> int:
    """Open the store (perhaps creating it) and write whole histories; the appends made."""
    store = SqliteStore(path)
    appends = 0
    try:
        for i in range(courses):
            course_id, version = f"{prefix}{i:03d}", 0
            for batch in course_commands(course_id, shards=2):
                version = store.append(course_id, version, batch)
                appends += 1
    finally:
        store.close()
    return appends


def _race(path: str, course_id: str) -> int:
    """Try every append of ``course_id``'s history, each at the version it belongs at; a
    conflict means the other process wrote that one. How many this process won."""
    store = SqliteStore(path)
    won, version = 0, 0
    try:
        for batch in course_commands(course_id, shards=2):
            try:
                store.append(course_id, version, batch)
                won += 1
            except ConcurrencyConflict:
                pass
            version += len(batch)
    finally:
        store.close()
    return won


@pytest.mark.timeout(300)
def test_processes_create_one_database_and_append_side_by_side(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")  # not there yet: four processes create it at once
    with SPAWN.Pool(4) as pool:
        appends = pool.starmap(_write_courses, [(path, f"p{k}-", 15) for k in range(4)])
    per_course = len(course_commands("x", shards=2))
    assert appends == [15 * per_course] * 4
    store = SqliteStore(path)
    verdicts = list(audit_all(store, workers=1))
    store.close()
    assert len(verdicts) == 60 and all(v.ok for v in verdicts), [v for v in verdicts if not v.ok]


@pytest.mark.timeout(300)
def test_two_processes_racing_on_one_course_write_each_append_once(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    SqliteStore(path).close()
    with SPAWN.Pool(2) as pool:
        wins = pool.starmap(_race, [(path, "contested")] * 2)
    batches = course_commands("contested", shards=2)
    assert sum(wins) == len(batches)  # every append exactly once, by one of them
    store = SqliteStore(path)
    history = store.load("contested")
    assert len(history) == sum(len(b) for b in batches)
    (verdict,) = audit_all(store, workers=1)
    store.close()
    assert verdict.ok, verdict


ENV = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_SQLITE_SYNCHRONOUS": "NORMAL", "USER": "tester"}


@pytest.mark.timeout(300)
def test_work_in_two_processes_runs_every_course_once(tmp_path: Path) -> None:
    rt = embedded(tmp_path, settings=Settings.from_env(ENV), steps=noop_steps(default_pipeline()))
    try:
        ids = [
            rt.bridge.ingest({"videoUri": "gs://b/v.mp4", "title": f"T{i}"}, message_id=f"m{i}")
            for i in range(4)
        ]
    finally:
        rt.close()  # its queue dies with it: the workers must recover every course
    result = CliRunner().invoke(
        main,
        [
            "work",
            "--until-idle",
            "--synthetic",
            "--processes",
            "2",
            "--json",
            "--data",
            str(tmp_path),
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["courses"] == {"completed": 4}
    assert [p["partition"] for p in out["processes"]] == [0, 1]
    recovered = [p["recovered"]["courses"] for p in out["processes"]]
    # m2 and m3 hash to partition 0, m0 and m1 to partition 1: each recovered its own two
    assert recovered == [2, 2], recovered  # each its own share, none twice
    store = SqliteStore(tmp_path / "events.db")
    try:
        for course_id in ids:
            succeeded = [e.data["task"] for e in store.load(course_id) if e.type == "TaskSucceeded"]
            assert len(succeeded) == len(set(succeeded)) == 15  # every task once
        assert all(v.ok for v in audit_all(store, workers=1))
    finally:
        store.close()


@pytest.mark.timeout(300)
def test_bench_pipeline_in_two_processes_runs_every_course_of_both_shares() -> None:
    result = bench_pipeline(courses=6, workers=2, processes=2)
    assert (result["processes"], result["workers"], result["workers_per_process"]) == (2, 2, 1)
    assert result["completed"] == 6
    assert result["task_executions"] == 6 * 15  # every task of the no-op DAG, once
    assert 0 < result["course_latency_p50_ms"] <= result["course_latency_p99_ms"]


@pytest.mark.timeout(300)
def test_ctrl_c_stops_work_in_every_process_and_it_says_so(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from bridge.runtime.embedded import live_processes

    SqliteStore(tmp_path / "events.db").close()
    coursegen = Path(sys.executable).with_name("coursegen")  # the installed entry point
    command = [str(coursegen), "work", "--synthetic", "--processes", "2"]
    env = {**os.environ, **ENV}
    proc = subprocess.Popen(
        [*command, "--data", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    )
    try:
        deadline = time.monotonic() + 120
        while len(live_processes(tmp_path)) < 2:  # both workers are running
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the two workers did not start"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert out.strip().endswith("interrupted"), out
    assert live_processes(tmp_path) == []  # each closed its runtime
