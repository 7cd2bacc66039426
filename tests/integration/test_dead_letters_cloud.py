"""``coursegen dead-letters`` against the Pub/Sub emulator: the dead letters on
course-requests-dead-letter-hold are listed and shown without being consumed; a republish
publishes the original bytes to course-requests, marked, and acknowledges the dead letter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.pubsub import PubSubNotifier, make_publisher
from tests.emulators import need, unique

pytestmark = pytest.mark.emulator
REQUEST = {"videoUri": "gs://lectures/rivers.mp4", "title": "Rivers"}


@pytest.fixture
def cloud() -> Iterator[tuple[str, Any, str]]:
    need("PUBSUB_EMULATOR_HOST")
    from google.cloud import pubsub_v1

    project = unique("dead")
    publisher = make_publisher()
    subscriber = pubsub_v1.SubscriberClient()
    for topic in ("course-requests", "course-requests-dead-letter"):
        publisher.create_topic(name=publisher.topic_path(project, topic))
    hold = subscriber.subscription_path(project, "course-requests-dead-letter-hold")
    subscriber.create_subscription(
        request={
            "name": hold,
            "topic": publisher.topic_path(project, "course-requests-dead-letter"),
        }
    )
    watch = subscriber.subscription_path(project, "watch-course-requests")
    subscriber.create_subscription(
        request={"name": watch, "topic": publisher.topic_path(project, "course-requests")}
    )
    # What the bridge does with a message it refuses (bridge.web.bridge_app._dead_letter).
    notifier = PubSubNotifier(publisher, project, "course-events", "course-requests-dead-letter")
    notifier.dead_letter(
        json.dumps(REQUEST).encode(),
        "hostile videoUri: a rule since relaxed",
        {"source": "course-requests", "messageId": "m-1"},
    )
    yield project, subscriber, watch
    subscriber.close()


def cli(project: str, *args: str, code: int = 0) -> str:
    env = {"COURSEGEN_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": project, "USER": "ann"}
    result = CliRunner().invoke(main, ["dead-letters", *args], env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_list_show_and_republish_from_the_dead_letter_subscription(cloud) -> None:
    project, subscriber, watch = cloud
    rows = json.loads(cli(project, "list", "--json"))
    assert len(rows) == 1 and rows[0]["reason"] == "hostile videoUri: a rule since relaxed"
    letter = rows[0]["id"]
    again = json.loads(cli(project, "list", "--json"))  # reading does not consume
    assert [r["id"] for r in again] == [letter]
    shown = json.loads(cli(project, "show", letter))
    assert json.loads(shown["data"]) == REQUEST and shown["attributes"]["messageId"] == "m-1"

    out = json.loads(cli(project, "republish", letter, "--reason", "rule fixed", "--json"))
    assert out["status"] == "republished" and out["topic"].endswith("/topics/course-requests")
    response = subscriber.pull(request={"subscription": watch, "max_messages": 10}, timeout=10)
    [received] = response.received_messages
    message = received.message
    assert json.loads(message.data) == REQUEST
    attributes = dict(message.attributes)
    assert attributes["coursegen_republished_from"] == letter
    assert attributes["coursegen_republished_by"] == "ann"
    assert attributes["coursegen_republish_reason"] == "rule fixed"
    assert attributes["messageId"] == "m-1" and "coursegen_republished_at" in attributes
    assert json.loads(cli(project, "list", "--json")) == []  # acknowledged: it left the hold
    assert "no dead letter" in cli(project, "republish", letter, "--reason", "again", code=1)
