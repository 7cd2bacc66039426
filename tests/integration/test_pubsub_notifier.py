"""The Pub/Sub publisher against the Pub/Sub emulator: notifications and dead letters."""

from __future__ import annotations

import json

import pytest

from bridge.pubsub import PubSubNotifier, make_publisher
from tests.emulators import need, unique

pytestmark = pytest.mark.emulator


@pytest.fixture
def pubsub():
    need("PUBSUB_EMULATOR_HOST")
    from google.cloud import pubsub_v1

    project = unique("pubsub")
    publisher = make_publisher()
    subscriber = pubsub_v1.SubscriberClient()
    subs = {}
    for topic in ("course-events", "dead"):
        publisher.create_topic(name=publisher.topic_path(project, topic))
        subs[topic] = subscriber.subscription_path(project, unique(topic))
        subscriber.create_subscription(
            request={
                "name": subs[topic],
                "topic": publisher.topic_path(project, topic),
                "enable_message_ordering": True,
            }
        )
    yield PubSubNotifier(publisher, project, "course-events", "dead"), subscriber, subs
    subscriber.close()


def pull(subscriber, sub, n):
    got = []
    for _ in range(20):
        response = subscriber.pull(request={"subscription": sub, "max_messages": 10}, timeout=5)
        got += [m.message for m in response.received_messages]
        if response.received_messages:
            subscriber.acknowledge(
                request={
                    "subscription": sub,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
        if len(got) >= n:
            break
    return got


def test_notifications_carry_course_and_version_ordered_by_course(pubsub):
    notifier, subscriber, subs = pubsub
    for version in (1, 2, 3):
        notifier.notify("c1", version)
    messages = pull(subscriber, subs["course-events"], 3)
    assert [json.loads(m.data) for m in messages] == [
        {"courseId": "c1", "version": v} for v in (1, 2, 3)
    ]
    assert {m.ordering_key for m in messages} == {"c1"}


def test_dead_letters_carry_the_original_data_and_the_reason(pubsub):
    notifier, subscriber, subs = pubsub
    notifier.dead_letter(b"\xff not json", "message.data is not JSON", {"source": "x"})
    (message,) = pull(subscriber, subs["dead"], 1)
    assert message.data == b"\xff not json"
    assert dict(message.attributes) == {"reason": "message.data is not JSON", "source": "x"}


def test_a_failed_notification_is_logged_not_raised(caplog):
    class Down:
        def topic_path(self, project, topic):
            return f"projects/{project}/topics/{topic}"

        def publish(self, topic, data, ordering_key="", **attrs):
            raise RuntimeError("unavailable")

    PubSubNotifier(Down(), "p", "course-events", "dead").notify("c1", 4)
    assert "could not notify course c1 at version 4" in caplog.text
