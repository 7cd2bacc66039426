"""``coursegen queues sync`` against gcloud-tasks-emulator: every queue of pipeline.json is
created with its retry config and rate limits; an existing queue is updated. The emulator
keeps what a create sends but ignores updates, so an update is checked by what was sent."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from bridge.cli import main
from bridge.ops import queues as ops
from statemachine.pipeline import default_pipeline
from tests.emulators import create_queues, need, tasks_client, unique

LOCATION = "europe-west1"


class Sent:
    """The emulator's client, recording every request that changes a queue."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_queues(self, **kwargs: Any) -> Any:
        return self.client.list_queues(**kwargs)

    def create_queue(self, **kwargs: Any) -> Any:
        self.calls.append(("create_queue", kwargs))
        return self.client.create_queue(**kwargs)

    def update_queue(self, **kwargs: Any) -> Any:
        self.calls.append(("update_queue", kwargs))
        return self.client.update_queue(**kwargs)


def listed(client: Any, project: str) -> dict[str, Any]:
    parent = f"projects/{project}/locations/{LOCATION}"
    return {q.name.rsplit("/", 1)[-1]: q for q in client.list_queues(parent=parent)}


def test_sync_creates_every_queue_with_its_settings_and_then_has_nothing_to_do() -> None:
    client = tasks_client()
    project = unique("queues")
    changes = ops.plan(client, project, LOCATION)
    assert {c.action for c in changes} == {"create"}
    assert listed(client, project) == {}  # planning sends nothing

    assert sorted(ops.sync(client, project, LOCATION, changes)) == sorted(default_pipeline().queues)
    made = listed(client, project)
    assert sorted(made) == sorted(default_pipeline().queues)
    wanted = ops.queue_settings()
    for name, queue in made.items():
        assert ops.current_settings(queue) == wanted[name]  # the emulator keeps a create
    ai = made["ai-analysis-queue"]
    assert (ai.retry_config.max_attempts, ai.rate_limits.max_dispatches_per_second) == (6, 2)
    assert {c.action for c in ops.plan(client, project, LOCATION)} == {"unchanged"}


def test_sync_updates_queues_that_have_names_only() -> None:
    client = Sent(tasks_client())
    project = unique("queues")
    # What the emulator's launcher (and a hand-made queue) leaves: names, retry 0, rate 0.
    create_queues(client.client, project, LOCATION, default_pipeline().queues)
    changes = ops.plan(client, project, LOCATION)
    assert {c.action for c in changes} == {"update"}
    video = next(c for c in changes if c.queue == "video-preparation-queue")
    assert video.fields["retry_config.max_attempts"] == (0, 5)
    assert video.fields["rate_limits.max_dispatches_per_second"] == (0.0, 5.0)

    ops.sync(client, project, LOCATION, changes)
    assert [name for name, _ in client.calls] == ["update_queue"] * len(changes)
    sent = {c["queue"]["name"].rsplit("/", 1)[-1]: c for _, c in client.calls}
    media = sent["media-processing-queue"]
    assert media["update_mask"] == {
        "paths": ["rate_limits", "retry_config", "stackdriver_logging_config"]
    }
    assert media["queue"]["retry_config"]["max_attempts"] == 5
    assert media["queue"]["retry_config"]["min_backoff"] == {"seconds": 10, "nanos": 0}
    assert media["queue"]["rate_limits"] == {
        "max_dispatches_per_second": 5.0,
        "max_concurrent_dispatches": 4,
    }


def test_the_cli_shows_the_difference_first_and_dry_run_sends_nothing() -> None:
    host = need("CLOUD_TASKS_EMULATOR_HOST")
    project = unique("queues")
    env = {"CLOUD_TASKS_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": project}
    runner = CliRunner()

    dry = runner.invoke(main, ["queues", "sync", "--dry-run", "--region", LOCATION], env=env)
    assert dry.exit_code == 0, dry.output
    assert "create    ai-analysis-queue" in dry.output
    assert "retry_config.max_attempts: - -> 6" in dry.output
    assert "dry run: 4 of 4 queues would change" in dry.output
    assert listed(tasks_client(), project) == {}

    done = runner.invoke(main, ["queues", "sync", "--region", LOCATION, "--json"], env=env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert sorted(report["done"]) == sorted(default_pipeline().queues)
    again = runner.invoke(main, ["queues", "sync", "--region", LOCATION], env=env)
    assert "unchanged ai-analysis-queue" in again.output
    assert "0 of 4 queues created or updated" in again.output
