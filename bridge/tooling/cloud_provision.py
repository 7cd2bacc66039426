"""Create cloud-local's resources on the emulators, as Terraform creates them in the cloud.

Topics, push subscriptions with their dead-letter policy and retry policy, the hold
subscriptions, the Cloud Tasks queues with their retry config and rate limits, and the
artifacts bucket (bridge.tooling.cloud_topology says what, from pipeline.json and terraform/).
The clients find the emulators through the environment, so every call runs inside
``stack_env(emulators)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bridge.tooling import cloud_topology as topo

TIMEOUT_S = 30.0


@contextmanager
def stack_env(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the duration (the Google clients read it when built)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _seconds(text: str) -> dict[str, int]:
    """Terraform's ``"10s"`` as a protobuf Duration."""
    return {"seconds": int(text.removesuffix("s"))}


def create_pubsub(project: str, bridge_url: str) -> list[str]:
    """Every topic and subscription of modules/pubsub; the names created."""
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.api_core import exceptions as gexc

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    made = []
    try:
        for topic in topo.topics():
            with suppress(gexc.AlreadyExists):
                publisher.create_topic(name=publisher.topic_path(project, topic), timeout=TIMEOUT_S)
            made.append(f"topic {topic}")
        for sub in topo.subscriptions():
            with suppress(gexc.AlreadyExists):
                subscriber.create_subscription(request=_subscription(project, sub, bridge_url))
            made.append(f"subscription {sub.name}")
    finally:
        subscriber.close()
    return made


def _subscription(project: str, sub: topo.Subscription, bridge_url: str) -> dict[str, Any]:
    topic = f"projects/{project}/topics/{sub.topic}"
    request: dict[str, Any] = {
        "name": f"projects/{project}/subscriptions/{sub.name}",
        "topic": topic,
        "ack_deadline_seconds": sub.ack_deadline_s,
        "retain_acked_messages": sub.retain_acked,
        "expiration_policy": {},  # ttl "" in Terraform: never expire
    }
    if sub.push_path is not None:
        # Terraform adds an oidc_token; the emulator pushes without one (COURSEGEN_AUTH=none).
        request["push_config"] = {"push_endpoint": bridge_url + sub.push_path}
        request["retry_policy"] = {
            "minimum_backoff": {"seconds": sub.min_backoff_s},
            "maximum_backoff": {"seconds": sub.max_backoff_s},
        }
    if sub.dead_letter_topic is not None:
        request["dead_letter_policy"] = {
            "dead_letter_topic": f"projects/{project}/topics/{sub.dead_letter_topic}",
            "max_delivery_attempts": sub.max_delivery_attempts,
        }
    return request


def create_queues(tasks_host: str, project: str, region: str) -> dict[str, bool]:
    """Every queue of pipeline.json with its retry config and rate limits; for each, whether
    the emulator kept the retry config (gcloud-tasks-emulator keeps a queue's name only)."""
    from bridge.runtime.cloud import tasks_client_for

    client = tasks_client_for(tasks_host)
    parent = f"projects/{project}/locations/{region}"
    kept = {}
    for name, fields in topo.queues().items():
        retry = dict(fields["retry_config"])
        for key in ("min_backoff", "max_backoff", "max_retry_duration"):
            retry[key] = _seconds(retry[key])
        queue = {
            "name": f"{parent}/queues/{name}",
            "retry_config": retry,
            "rate_limits": fields["rate_limits"],
        }
        made = client.create_queue(parent=parent, queue=queue, timeout=TIMEOUT_S)
        kept[name] = made.retry_config.max_attempts == retry["max_attempts"]
    return kept


def create_bucket(project: str, bucket: str, region: str) -> None:
    import google.cloud.storage as storage
    from google.api_core import exceptions as gexc

    client = storage.Client(project=project)
    with suppress(gexc.Conflict):
        client.create_bucket(bucket, location=region, timeout=TIMEOUT_S)


def upload(project: str, bucket: str, name: str, path: Path) -> str:
    """Upload ``path`` as ``gs://bucket/name``; its URI."""
    import google.cloud.storage as storage

    blob = storage.Client(project=project).bucket(bucket).blob(name)
    blob.upload_from_filename(str(path), timeout=120)
    return f"gs://{bucket}/{name}"


def publish(project: str, topic: str, data: bytes) -> str:
    """Publish ``data`` as ``gcloud pubsub topics publish`` does (no ordering key, no
    attributes); the message id."""
    import google.cloud.pubsub_v1 as pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    message_id: str = publisher.publish(publisher.topic_path(project, topic), data).result(
        timeout=TIMEOUT_S
    )
    return message_id


def pull(project: str, subscription: str, max_messages: int = 50) -> list[dict[str, Any]]:
    """What a (hold) subscription holds right now, acknowledged: data and attributes."""
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.api_core import exceptions as gexc

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, subscription)
    try:
        try:
            answer = subscriber.pull(
                request={"subscription": path, "max_messages": max_messages}, timeout=10
            )
        except gexc.DeadlineExceeded:
            return []
        got = [
            {"data": m.message.data, "attributes": dict(m.message.attributes), "ack_id": m.ack_id}
            for m in answer.received_messages
        ]
        if got:
            acks = [m["ack_id"] for m in got]
            subscriber.acknowledge(request={"subscription": path, "ack_ids": acks})
        return got
    finally:
        subscriber.close()
