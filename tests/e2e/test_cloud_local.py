"""The production rehearsal: ``coursegen cloud-local`` runs the deployed topology on this
machine (emulators, Terraform's resources, every function of main.py as a process of its own)
and a course goes through it; then the faults of a real deployment, one at a time.

The rehearsal runs the real steps on samples/lecture.mp4; the fault drills run a second stack
with synthetic steps (``--synthetic SECONDS``: media and AI replaced, nothing else). Run with
``-s`` to see the per-step wall times and the process count of the rehearsal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.tooling import cloud_course, cloud_procs
from bridge.tooling import cloud_local as cl
from bridge.tooling import cloud_provision as provision
from bridge.tooling.cloud_function import started_marker

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "lecture.mp4"
STEP_S = 1.0  # synthetic steps: long enough to kill one mid-step


def need_tools() -> None:
    for tool in ("gcloud", "java", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: cloud-local needs the gcloud emulators")


def coursegen(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120):
    """Run the CLI in a process of its own, as a person would."""
    return subprocess.run(
        [sys.executable, "-c", "from bridge.cli import main; main()", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def up(folder: Path, *extra: str) -> cl.State:
    done = coursegen("cloud-local", "up", "--dir", str(folder), *extra, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "export FIRESTORE_EMULATOR_HOST=127.0.0.1:" in done.stdout
    assert "export STORAGE_EMULATOR_HOST=http://127.0.0.1:" in done.stdout
    return cl.State.load(folder)


def down(folder: Path, state: cl.State) -> None:
    done = coursegen("cloud-local", "down", "--dir", str(folder), timeout=120)
    assert done.returncode == 0, done.stderr
    left = {p.name: cloud_procs.live(p) for p in state.processes}
    assert not any(left.values()), f"processes left after down: {left}"


def exported(state: cl.State) -> dict[str, str]:
    return dict(state.exports)


def wait(folder: Path, course_id: str, timeout: float) -> dict[str, Any]:
    done = coursegen(
        "cloud-local", "wait", course_id, "--timeout", str(timeout), "--json", "--dir",
        str(folder), timeout=timeout + 60,
    )  # fmt: skip
    outcome: dict[str, Any] = json.loads(done.stdout)
    outcome["exit"] = done.returncode
    return outcome


def submit(folder: Path, *args: str) -> str:
    done = coursegen("cloud-local", "submit", *args, "--dir", str(folder))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def history(state: cl.State, course_id: str) -> list[Any]:
    return list(cloud_course.open_store(state).load(course_id))


def assert_each_result_once(events: list[Any]) -> None:
    results = Counter(e.data["task"] for e in events if e.type == "TaskSucceeded")
    assert results and all(n == 1 for n in results.values()), results


def until(check: Any, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- the rehearsal: real steps on the sample --------------------------------------------------


@pytest.mark.timeout(420)
def test_rehearsal_the_sample_becomes_a_course_through_the_deployed_topology(tmp_path):
    need_tools()
    folder = tmp_path / "stack"
    t0 = time.monotonic()
    state = up(folder)
    up_s = time.monotonic() - t0
    try:
        groups, count = cl.process_count(state)
        names = {p.name for p in state.processes}
        assert {"firestore", "pubsub", "tasks", "bridge", "scheduler"} <= names
        assert set(cloud_course_steps()) <= names
        course_id = submit(folder, str(SAMPLE), "--title", "Rehearsal lecture")
        outcome = wait(folder, course_id, timeout=300)
        print(f"\ncloud-local up: {up_s:.1f} s, {groups} process groups, {count} processes")
        print(json.dumps(outcome, indent=2))
        assert outcome["exit"] == 0 and outcome["status"] == "completed", outcome

        env = exported(state) | {"COURSEGEN_STORE": "firestore"}
        verified = coursegen("replay", course_id, "--verify", env=env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "verified" in verified.stdout

        with provision.stack_env(state.emulators):
            from google.cloud import storage

            bucket = storage.Client(project=state.project).bucket(state.bucket)
            course = json.loads(
                bucket.blob(f"artifacts/{course_id}/course.json").download_as_bytes()
            )
            page = bucket.blob(f"artifacts/{course_id}/course.html").download_as_text()
        assert course["title"] == "Rehearsal lecture" and course["modules"], course.keys()
        assert "Rehearsal lecture" in page
        assert_each_result_once(history(state, course_id))
        assert course_id in serve_lists(env, tmp_path)
    finally:
        down(folder, state)


def cloud_course_steps() -> list[str]:
    from bridge.tooling.cloud_topology import pipeline_doc

    return list(pipeline_doc()["steps"])


def serve_lists(env: Mapping[str, str], tmp_path: Path) -> str:
    """``coursegen serve`` against Firestore: the course list it answers."""
    port = cloud_procs.free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from bridge.cli import main; main()", "serve", "--workers", "0",
         "--port", str(port), "--data", str(tmp_path / "serve")],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def listed() -> str | None:
            try:
                return requests.get(f"http://127.0.0.1:{port}/api/courses", timeout=5).text
            except requests.RequestException:
                return None

        return str(until(listed, 60, "coursegen serve to answer", every=0.3))
    finally:
        server.terminate()
        server.wait(timeout=20)


# -- faults, on a stack with synthetic steps ------------------------------------------------


@pytest.fixture(scope="module")
def drills(tmp_path_factory) -> Iterator[tuple[Path, cl.State]]:
    need_tools()
    folder = tmp_path_factory.mktemp("drills") / "stack"
    state = up(folder, "--synthetic", str(STEP_S), "--reconcile-every", "1", "--quiet-seconds", "2")
    try:
        yield folder, state
    finally:
        down(folder, state)


def marker(state: cl.State, step: str, course_id: str, task: str | None = None) -> Path:
    return started_marker(state.dir / "tmp" / step, course_id, task or step)


@pytest.mark.timeout(60)
def test_up_twice_is_refused_and_names_the_running_stack(drills):
    folder, _ = drills
    again = coursegen("cloud-local", "up", "--dir", str(folder))
    assert again.returncode != 0
    assert "already up" in again.stderr and "down" in again.stderr
    listed = json.loads(coursegen("cloud-local", "status", "--json", "--dir", str(folder)).stdout)
    assert all(row["running"] for row in listed), listed


@pytest.mark.timeout(180)
def test_a_handler_killed_mid_step_is_redelivered_and_the_course_completes_once(drills):
    folder, state = drills
    course_id = submit(folder, str(SAMPLE), "--title", "Killed mid-step")
    started = marker(state, "prepare_video", course_id)
    until(started.exists, 60, "prepare_video to start")
    assert cl.kill(folder, "prepare_video", signal.SIGKILL)
    # a SIGKILL is delivered asynchronously: the group may run for a moment after killpg
    until(lambda: not cloud_procs.running(state.proc("prepare_video")), 10, "the kill")
    time.sleep(1.0)  # the Cloud Tasks emulator keeps redelivering to the dead port meanwhile
    assert not [e for e in history(state, course_id) if e.type == "TaskSucceeded"]
    restarted = coursegen("cloud-local", "restart", "prepare_video", "--dir", str(folder))
    assert restarted.returncode == 0, restarted.stderr
    outcome = wait(folder, course_id, timeout=120)
    assert outcome["status"] == "completed", outcome
    assert len(started.read_text().splitlines()) >= 2  # the killed run, then the redelivery
    events = history(state, course_id)
    assert_each_result_once(events)
    assert sum(e.type == "CourseCompleted" for e in events) == 1


@pytest.mark.timeout(180)
def test_the_same_request_published_twice_makes_one_course(drills):
    folder, state = drills
    course_id = "c-published-twice"
    assert submit(folder, str(SAMPLE), "--title", "Twice", "--course-id", course_id) == course_id
    assert submit(folder, str(SAMPLE), "--title", "Twice", "--course-id", course_id) == course_id
    outcome = wait(folder, course_id, timeout=120)
    assert outcome["status"] == "completed", outcome
    events = history(state, course_id)
    assert sum(e.type == "CourseRequested" for e in events) == 1
    assert_each_result_once(events)
    titled = [h for h in cloud_course.open_store(state).courses(limit=500)
              if (h.snapshot.get("request") or {}).get("title") == "Twice"]  # fmt: skip
    assert [h.course_id for h in titled] == [course_id]


@pytest.mark.timeout(120)
def test_a_poison_message_is_dead_lettered_and_touches_no_history(drills):
    _, state = drills
    store = cloud_course.open_store(state)
    before = {h.course_id: h.version for h in store.courses(limit=500)}
    with provision.stack_env(state.emulators):
        provision.publish(state.project, "course-requests", b"{not json")

        def parked() -> list[dict[str, Any]]:
            return provision.pull(state.project, "course-requests-dead-letter-hold")

        held = until(parked, 60, "the poison message on the dead-letter topic", every=0.5)
    assert [m["data"] for m in held] == [b"{not json"]
    attributes = held[0]["attributes"]
    assert attributes["source"] == "course-requests" and "not JSON" in attributes["reason"]
    after = {h.course_id: h.version for h in store.courses(limit=500)}
    assert after == before


@pytest.mark.timeout(240)
def test_results_arriving_while_the_bridge_is_down_are_rescued_by_the_reconciler(drills):
    folder, state = drills
    course_id = submit(folder, str(SAMPLE), "--title", "Bridge down")
    until(marker(state, "prepare_video", course_id).exists, 60, "prepare_video to start")
    assert cl.kill(folder, "bridge", signal.SIGKILL)

    def succeeded(task: str) -> bool:
        return any(
            e.type == "TaskSucceeded" and e.data["task"] == task for e in history(state, course_id)
        )

    until(lambda: succeeded("prepare_video"), 60, "prepare_video's result", every=0.2)
    time.sleep(1.0)  # its notification's push fails: nobody hands the next tasks to a queue
    assert not marker(state, "extract_frames", course_id).exists()
    back_at = time.time()
    restarted = coursegen("cloud-local", "restart", "bridge", "--dir", str(folder))
    assert restarted.returncode == 0, restarted.stderr
    outcome = wait(folder, course_id, timeout=150)
    assert outcome["status"] == "completed", outcome
    assert_each_result_once(history(state, course_id))
    runs = [json.loads(line) for line in Path(state.proc("scheduler").log).read_text().splitlines()]
    rescues = [r for r in runs if r.get("at", 0) > back_at and (r.get("body") or {}).get("rescued")]
    assert rescues, "the reconciler did not report rescuing the course"
