"""``coursegen dead-letters list|show|republish`` on the local stack's dead-letters.jsonl: a
republished message meets every check again, and each republish is recorded."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import main
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.web.dashboard.stack import local_stack
from statemachine.pipeline import default_pipeline

TOKEN = "dead-letter-token"
SETTINGS = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_OPERATOR_TOKEN": TOKEN}
ENV = {"COURSEGEN_STORE": "sqlite", "USER": "ann"}
VALID = {"videoUri": "gs://lectures/rivers.mp4", "title": "Rivers"}


def cli(data: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["dead-letters", *args, "--data", str(data)], env=ENV)
    assert result.exit_code == code, result.output
    return result.output


def park(data: Path) -> None:
    """Two dead letters, as the running stack parks them: a request the bridge refused (not
    JSON), and a valid one Pub/Sub gave up delivering (the bridge was down)."""
    stack = local_stack(data, settings=Settings.from_env(SETTINGS), workers=0)
    try:
        envelope = {
            "message": {"data": base64.b64encode(b"{not json").decode(), "messageId": "m-bad"},
            "subscription": "projects/p/subscriptions/course-requests-to-bridge",
        }
        answer = stack.app.test_client().post(
            "/pubsub/course-requests", json=envelope, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.get_json()["status"] == "rejected"
    finally:
        stack.close()
    record = {
        "at": 1_800_000_000.0,
        "reason": "max delivery attempts (5) reached",
        "attributes": {"source": "course-requests", "messageId": "m-good"},
        "data": json.dumps(VALID),
    }
    with (data / "dead-letters.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


def test_list_show_and_republish_a_dead_letter(tmp_path: Path) -> None:
    park(tmp_path)
    rows = json.loads(cli(tmp_path, "list", "--json"))
    assert [(r["id"], r["republished"]) for r in rows] == [("1", 0), ("2", 0)]
    assert "not JSON" in rows[0]["reason"] and rows[1]["source"] == "course-requests"
    shown = json.loads(cli(tmp_path, "show", "2"))
    assert json.loads(shown["data"]) == VALID
    assert shown["attributes"]["messageId"] == "m-good"

    out = cli(tmp_path, "republish", "2", "--reason", "the bridge is back")
    assert "republished: accepted (course c" in out
    log = [json.loads(line) for line in (tmp_path / "republished.jsonl").read_text().splitlines()]
    assert len(log) == 1
    assert log[0]["dead_letter"] == "2" and log[0]["operator"] == "ann"
    assert log[0]["reason"] == "the bridge is back" and log[0]["status"] == "accepted"
    course = log[0]["course_id"]
    status = CliRunner().invoke(main, ["status", course, "--json", "--data", str(tmp_path)])
    assert json.loads(status.output)["status"] == "running"  # requested, first task scheduled
    # The same message again is the same course (its message id), not a second one.
    cli(tmp_path, "republish", "2", "--reason", "twice")
    assert json.loads(cli(tmp_path, "show", "2"))["republished"][1]["course_id"] == course
    assert json.loads(cli(tmp_path, "list", "--json"))[1]["republished"] == 2


def test_a_message_still_refused_is_dead_lettered_again_and_the_attempt_recorded(
    tmp_path: Path,
) -> None:
    park(tmp_path)
    out = cli(tmp_path, "republish", "1", "--reason", "try again", code=1)
    assert "republished: rejected" in out and "not JSON" in out
    rows = json.loads(cli(tmp_path, "list", "--json"))
    assert len(rows) == 3 and rows[0]["republished"] == 1  # parked again, as line 3
    assert "not JSON" in rows[2]["reason"]


def test_unknown_ids_and_a_missing_reason_are_refused(tmp_path: Path) -> None:
    park(tmp_path)
    assert "no dead letter '9'" in cli(tmp_path, "show", "9", code=1)
    assert "no dead letter" in cli(tmp_path, "republish", "9", "--reason", "r", code=1)
    cli(tmp_path, "republish", "1", code=2)
    assert "a reason is required" in cli(tmp_path, "republish", "2", "--reason", " ", code=1)
    assert not (tmp_path / "republished.jsonl").exists()


def test_the_synthetic_stack_runs_a_republished_course(tmp_path: Path) -> None:
    park(tmp_path)
    cli(tmp_path, "republish", "2", "--reason", "the bridge is back")
    stack = local_stack(
        tmp_path,
        settings=Settings.from_env(SETTINGS),
        steps=noop_steps(default_pipeline(), shards=1),
        workers=2,
    )
    try:
        course = json.loads((tmp_path / "republished.jsonl").read_text())["course_id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stack.runtime.store.head(course).status != (
            "completed"
        ):
            time.sleep(0.05)
        assert stack.runtime.store.head(course).status == "completed"
    finally:
        stack.close()
