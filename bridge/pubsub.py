"""Pub/Sub out: course-events notifications (ordered per course) and the dead-letter topic."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("coursegen.pubsub")

PUBLISH_TIMEOUT_S = 30.0


def make_publisher() -> Any:
    """A PublisherClient with message ordering on (finds PUBSUB_EMULATOR_HOST by itself)."""
    import google.cloud.pubsub_v1 as pubsub_v1

    return pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )


class PubSubNotifier:
    """Publishes ``{courseId, version}`` to the course-events topic, ordering key = course id.

    A lost notification delays a course, never breaks it: the reconciler advances every course
    that went quiet. So ``notify`` logs a failed publish instead of failing the task.
    """

    def __init__(
        self, publisher: Any, project: str, events_topic: str, dead_letter_topic: str
    ) -> None:
        self.publisher = publisher
        self.events_topic = publisher.topic_path(project, events_topic)
        self.dead_letter_topic = publisher.topic_path(project, dead_letter_topic)

    def notify(self, course_id: str, version: int) -> None:
        data = json.dumps({"courseId": course_id, "version": version}).encode()
        try:
            self._publish(self.events_topic, data, ordering_key=course_id)
        except Exception as err:  # the reconciler rescues the course
            log.error("could not notify course %s at version %d: %s", course_id, version, err)

    def dead_letter(
        self, data: bytes, reason: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Park a rejected message with the ``reason``; raises if the publish fails."""
        attrs = {k: str(v)[:1024] for k, v in (attributes or {}).items()}
        attrs["reason"] = reason[:1024]
        self._publish(self.dead_letter_topic, data, **attrs)

    def _publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> str:
        future = self.publisher.publish(topic, data, ordering_key=ordering_key, **attrs)
        try:
            message_id: str = future.result(timeout=PUBLISH_TIMEOUT_S)
        except Exception:
            if ordering_key:  # a failed publish pauses its ordering key until resumed
                self.publisher.resume_publish(topic, ordering_key)
            raise
        return message_id
