"""Dead letters: read them, and act on them (republish), each republish recorded.

Two places keep them. Locally (``coursegen serve``) the bridge parks a rejected message as one
JSON line in ``DATA/dead-letters.jsonl`` (``at``, ``reason``, ``attributes``, ``data``); its id
is its line number. In the cloud they are messages on the dead-letter topics, kept by the
pull subscriptions ``{topic}-dead-letter-hold`` (terraform/modules/pubsub); their id is the
Pub/Sub message id. Both the bridge's own rejections and Pub/Sub's dead-lettering (after the
push subscription's max delivery attempts) land there.

Republishing sends the original bytes back the way they first came, so every check applies
again (a message still refused is dead-lettered again, with its new reason):

- locally, through the bridge's push route logic (``republish_local`` takes that function);
  the republish, its outcome, operator and reason are appended to ``DATA/republished.jsonl``;
- in the cloud, to the source topic with the original attributes plus
  ``coursegen_republished_from`` (the dead letter's id), ``coursegen_republished_by``,
  ``coursegen_republished_at`` and ``coursegen_republish_reason``; then the dead letter is
  acknowledged (it leaves the hold subscription).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemachine.timefmt import iso

DEAD_LETTERS = "dead-letters.jsonl"
REPUBLISHED = "republished.jsonl"
SOURCES = ("course-requests", "course-events")
PULL_TIMEOUT_S = 10.0
MAX_PULLS = 50
EMPTY_PULLS = 3


class DeadLetterError(LookupError):
    """No such dead letter, or it cannot be republished; the message says which."""


@dataclass(frozen=True)
class DeadLetter:
    id: str
    at: str | None
    reason: str
    attributes: Mapping[str, str]
    data: bytes
    republished: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    @property
    def source(self) -> str:
        """The topic (or push route) the message first came from."""
        source = self.attributes.get("source", "")
        return source if source in SOURCES else "course-requests"

    def summary(self) -> dict[str, Any]:
        text = self.data.decode("utf-8", "replace")
        return {
            "id": self.id,
            "at": self.at,
            "source": self.source,
            "reason": self.reason,
            "data": text if len(text) <= 80 else text[:79] + "…",
            "republished": len(self.republished),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "source": self.source,
            "reason": self.reason,
            "attributes": dict(self.attributes),
            "data": self.data.decode("utf-8", "replace"),
            "republished": [dict(r) for r in self.republished],
        }


# -- local: DATA/dead-letters.jsonl ----------------------------------------------------------
class LocalDeadLetters:
    """The dead letters ``coursegen serve`` parked in ``root``, and the republish log."""

    def __init__(self, root: Path) -> None:
        self.path = root / DEAD_LETTERS
        self.log = root / REPUBLISHED

    def entries(self) -> list[DeadLetter]:
        if not self.path.exists():
            return []
        done = self._republished()
        letters = []
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                letters.append(_local_letter(str(number), line, done.get(str(number), [])))
        return letters

    def get(self, letter_id: str) -> DeadLetter:
        for letter in self.entries():
            if letter.id == letter_id:
                return letter
        count = len(self.entries())
        raise DeadLetterError(
            f"no dead letter {letter_id!r:.40} in {self.path} ({count} kept; ids are 1..{count})"
            if count
            else f"no dead letters in {self.path}"
        )

    def record(self, entry: Mapping[str, Any]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(dict(entry), sort_keys=True) + "\n")

    def _republished(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        if self.log.exists():
            for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    found.setdefault(str(entry["dead_letter"]), []).append(entry)
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line after a crash
        return found


def _local_letter(number: str, line: str, done: list[dict[str, Any]]) -> DeadLetter:
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        return DeadLetter(number, None, "unreadable line", {}, line.encode(), tuple(done))
    at = record.get("at")
    attributes = record.get("attributes")
    return DeadLetter(
        id=number,
        at=iso(at) if isinstance(at, int | float) else None,
        reason=str(record.get("reason", "")),
        attributes={str(k): str(v) for k, v in (attributes or {}).items()},
        data=str(record.get("data", "")).encode(),
        republished=tuple(done),
    )


# What republishes one message the way it first came: the bridge's push route logic for the
# source (``bridge.web.bridge_app.ingest_envelope``/``advance_envelope`` over a runtime).
Deliver = Callable[[str, Mapping[str, Any]], tuple[int, Mapping[str, Any]]]


def republish_local(
    letters: LocalDeadLetters,
    letter_id: str,
    deliver: Deliver,
    *,
    operator: str,
    reason: str,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Deliver dead letter ``letter_id`` again as a push envelope; record and return what
    came of it (``accepted``/``advanced``, or ``rejected`` again with the new reason)."""
    letter = letters.get(letter_id)
    why = _reason(reason)
    envelope = push_envelope(letter)
    status, body = deliver(letter.source, envelope)
    outcome = {
        "dead_letter": letter.id,
        "at": iso(now()),
        "operator": operator,
        "reason": why,
        "source": letter.source,
        "status": body.get("status", "failed" if status >= 400 else "done"),
        "http_status": status,
        "course_id": body.get("courseId"),
        "detail": body.get("reason") or body.get("detail"),
    }
    letters.record(outcome)
    return outcome


def push_envelope(letter: DeadLetter) -> dict[str, Any]:
    """The Pub/Sub push envelope the message first came in (its data base64 again)."""
    import base64

    message_id = letter.attributes.get("messageId") or f"republished-{letter.id}"
    return {
        "message": {
            "data": base64.b64encode(letter.data).decode(),
            "messageId": message_id,
            # the request's own attributes that mean something to the bridge (its tenant)
            "attributes": {k: letter.attributes[k] for k in ("tenant",) if k in letter.attributes},
        },
        "subscription": letter.attributes.get("subscription", "republished"),
    }


def _reason(reason: str) -> str:
    why = (reason or "").strip()
    if not why:
        raise DeadLetterError("a reason is required (it is recorded with the republish)")
    return why[:2000]


# -- cloud: the dead-letter hold subscriptions ---------------------------------------------
class CloudDeadLetters:
    """The messages on ``{source}-dead-letter-hold`` (pulled, then let go at once: reading
    them leaves them in place; a republish acknowledges its dead letter)."""

    def __init__(self, subscriber: Any, publisher: Any, project: str, source: str) -> None:
        if source not in SOURCES:
            raise DeadLetterError(f"no dead-letter source {source!r}: one of {', '.join(SOURCES)}")
        self.subscriber = subscriber
        self.publisher = publisher
        self.project = project
        self.source = source
        self.subscription = subscriber.subscription_path(project, f"{source}-dead-letter-hold")
        self.topic = publisher.topic_path(project, source)

    def entries(self, limit: int = 100) -> list[DeadLetter]:
        return [letter for letter, _ in self._pull(limit, release=True)]

    def get(self, letter_id: str) -> DeadLetter:
        for letter, _ in self._pull(1000, release=True):
            if letter.id == letter_id:
                return letter
        raise DeadLetterError(f"no dead letter {letter_id!r:.40} on {self.subscription}")

    def republish(self, letter_id: str, *, operator: str, reason: str) -> dict[str, Any]:
        """Publish the dead letter to its source topic, marked, then acknowledge it."""
        why = _reason(reason)
        pulled = self._pull(1000, release=False)
        found = [(letter, ack) for letter, ack in pulled if letter.id == letter_id]
        others = [ack for letter, ack in pulled if letter.id != letter_id]
        try:
            if not found:
                raise DeadLetterError(f"no dead letter {letter_id!r:.40} on {self.subscription}")
            letter, ack = found[0]
            attrs = {k: v for k, v in letter.attributes.items() if not k.startswith("Cloud")}
            attrs |= {
                "coursegen_republished_from": letter.id,
                "coursegen_republished_by": operator,
                "coursegen_republished_at": iso(time.time()),
                "coursegen_republish_reason": why[:1024],
            }
            message_id = self.publisher.publish(self.topic, letter.data, **attrs).result(
                timeout=PULL_TIMEOUT_S
            )
            self.subscriber.acknowledge(
                request={"subscription": self.subscription, "ack_ids": [ack]},
                timeout=PULL_TIMEOUT_S,
            )
        finally:
            self._release(others)
        return {
            "dead_letter": letter.id,
            "operator": operator,
            "reason": why,
            "source": self.source,
            "status": "republished",
            "topic": self.topic,
            "message_id": message_id,
        }

    def _pull(self, limit: int, *, release: bool) -> list[tuple[DeadLetter, str]]:
        """Up to ``limit`` messages, held for their ack deadline (``release``: let go at once).

        Each pull returns at once (``return_immediately``); a hold subscription is read to its
        end when ``EMPTY_PULLS`` pulls in a row, a moment apart, bring nothing new."""
        got: dict[str, tuple[DeadLetter, str]] = {}
        empty = 0
        for _ in range(MAX_PULLS):
            response = self.subscriber.pull(
                request={
                    "subscription": self.subscription,
                    "max_messages": min(limit, 100),
                    "return_immediately": True,
                },
                timeout=PULL_TIMEOUT_S,
            )
            fresh = [m for m in response.received_messages if m.message.message_id not in got]
            for received in fresh:
                got[received.message.message_id] = (_cloud_letter(received), received.ack_id)
            empty = 0 if fresh else empty + 1
            if empty >= EMPTY_PULLS or len(got) >= limit:
                break
            if not fresh:
                time.sleep(0.2)
        if release:
            self._release([ack for _, ack in got.values()])
        return sorted(got.values(), key=lambda pair: pair[0].at or "")

    def _release(self, ack_ids: Sequence[str]) -> None:
        """Let pulled messages go at once (ack deadline 0): they stay on the subscription."""
        if ack_ids:
            self.subscriber.modify_ack_deadline(
                request={
                    "subscription": self.subscription,
                    "ack_ids": list(ack_ids),
                    "ack_deadline_seconds": 0,
                },
                timeout=PULL_TIMEOUT_S,
            )


def _cloud_letter(received: Any) -> DeadLetter:
    message = received.message
    attributes = {str(k): str(v) for k, v in message.attributes.items()}
    published = message.publish_time
    return DeadLetter(
        id=str(message.message_id),
        at=iso(published.timestamp()) if published else None,
        reason=attributes.get("reason", "dead-lettered by Pub/Sub after its delivery attempts"),
        attributes=attributes,
        data=bytes(message.data),
    )
