"""The legacy transport (plan 6.2): a step document in ``legacy_steps`` whose creation runs it.

The bridge writes one document per task, named like the Cloud Tasks task (so a second write of
the same task is refused, as the queue refuses a name); in the cloud Eventarc delivers the
``google.cloud.firestore.document.v1.created`` event to ``main.legacy_step_created``, locally
``LocalStepDocuments`` plays both the collection and its trigger. Either way the step runs
through the same ``TaskEndpoint`` logic as a Cloud Tasks delivery, as a trusted in-process
call (the trigger authenticated the delivery); the attempt number comes from the history.
``expire_at`` lets Firestore's TTL policy delete old documents.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.dispatch import AlreadyExists, Dispatcher, TaskRequest
from bridge.dispatch.driver import Driven
from handlers.endpoint import TaskEndpoint
from handlers.outcomes import Answer, problem
from statemachine.pipeline import Pipeline
from statemachine.ports import Clock

log = logging.getLogger("coursegen.legacy")

COLLECTION = "legacy_steps"
TTL_S = 7 * 24 * 3600.0
MAX_TRIES = 100  # Eventarc retries for 24 h; the endpoint records exhaustion long before


class StepDocuments(Protocol):
    def create(self, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create the document; ``AlreadyExists`` if it exists."""
        ...


def step_document(request: TaskRequest, now: float, ttl_s: float = TTL_S) -> dict[str, Any]:
    """The document of one task: its payload (JSON text), names for people, TTL time."""
    p = request.payload
    return {
        "name": request.name,
        "queue": request.queue,
        "step": request.step,
        "courseId": p.get("courseId"),
        "idempotencyKey": p.get("idempotencyKey"),
        "payload": json.dumps(dict(p), separators=(",", ":")),
        "created": datetime.fromtimestamp(now, UTC),
        "expire_at": datetime.fromtimestamp(now + ttl_s, UTC),
    }


class CannotDelay(ValueError):
    """The legacy transport cannot hold a task until a time: its trigger fires on create."""


class LegacyTriggerDispatcher:
    """The dispatch port over a ``legacy_steps`` collection.

    A Firestore trigger fires when the document is created: it cannot hold a task until a
    ``schedule_time`` (a request's ``notBefore``, a resume at a time). Such a task goes
    through ``delayed`` (the Cloud Tasks transport, which can), with a warning line; with no
    ``delayed`` it is refused with ``CannotDelay``, never run early."""

    def __init__(
        self,
        documents: StepDocuments,
        clock: Clock,
        *,
        ttl_s: float = TTL_S,
        delayed: Dispatcher | None = None,
    ) -> None:
        self.documents = documents
        self.clock = clock
        self.ttl_s = ttl_s
        self.delayed = delayed
        self.written = 0
        self.rerouted = 0
        self._lock = threading.Lock()

    def dispatch(self, request: TaskRequest) -> None:
        now = self.clock.now()
        if request.schedule_time is not None and request.schedule_time > now:
            self._dispatch_later(request)
            return
        self.documents.create(request.name, step_document(request, now, self.ttl_s))
        with self._lock:
            self.written += 1

    def _dispatch_later(self, request: TaskRequest) -> None:
        course = request.payload.get("courseId")
        if self.delayed is None:
            raise CannotDelay(
                f"the legacy transport cannot hold task {request.name} of course {course}"
                " until its schedule time (a Firestore trigger fires on create)"
            )
        self.delayed.dispatch(request)  # AlreadyExists (a re-dispatch) is not logged again
        with self._lock:
            self.rerouted += 1
        log.warning(
            "legacy transport cannot delay: task %s of course %s (not before %s) went through"
            " Cloud Tasks",
            request.payload.get("idempotencyKey"),
            course,
            datetime.fromtimestamp(request.schedule_time or 0, UTC).isoformat(),
        )


class LegacyDisabled:
    """Where legacy-variant courses go once the legacy trigger is disabled: the main transport,
    with a log line per task (switchover leaves no course stranded on a removed function)."""

    def __init__(self, fallback: Dispatcher) -> None:
        self.fallback = fallback
        self.fallbacks = 0

    def dispatch(self, request: TaskRequest) -> None:
        self.fallback.dispatch(request)  # AlreadyExists (a re-dispatch) is not logged again
        self.fallbacks += 1
        log.warning(
            "legacy transport disabled: task %s of course %s went through Cloud Tasks",
            request.payload.get("idempotencyKey"),
            request.payload.get("courseId"),
        )


class FirestoreStepDocuments:
    """``legacy_steps`` in Firestore; ``create()`` fails if the document exists."""

    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        self.client = client
        self.collection = collection

    def create(self, doc_id: str, data: Mapping[str, Any]) -> None:
        from google.api_core import exceptions as gexc

        try:
            self.client.collection(self.collection).document(doc_id).create(dict(data))
        except gexc.AlreadyExists:
            raise AlreadyExists(f"step document {doc_id} exists") from None


def _trusted(headers: Mapping[str, str], body: bytes, url: str) -> str:
    return "legacy-trigger"


def step_runner(endpoint: TaskEndpoint) -> Callable[[Mapping[str, Any]], Answer]:
    """``run(document) -> Answer``: the step a legacy document names, through ``endpoint``."""
    trusted = replace(endpoint, verify=_trusted)

    def run(document: Mapping[str, Any]) -> Answer:
        try:
            payload = json.loads(document["payload"])
            if not isinstance(payload, dict):
                raise TypeError("the payload is not an object")
        except (KeyError, TypeError, ValueError) as err:
            return problem(422, "Invalid step document", f"no task payload: {err}")
        payload["attempt"] = _attempt(endpoint, payload)
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        return trusted.handle(headers, body, url=f"legacy://{payload.get('taskType')}")

    return run


def _attempt(endpoint: TaskEndpoint, payload: Mapping[str, Any]) -> int:
    """The next attempt of the task: one more than the history has started (no queue counts)."""
    course_id, data = payload.get("courseId"), payload.get("data")
    if not isinstance(course_id, str) or not isinstance(data, dict):
        return 1
    head = endpoint.store.head(course_id)
    task = head.snapshot["tasks"].get(data.get("task")) if head is not None else None
    if task is None or task["key"] != payload.get("idempotencyKey"):
        return 1
    return int(task["attempts"]) + 1


def document_fields(data: Any) -> dict[str, Any]:
    """The fields of the document a Firestore "created" CloudEvent carries: ``data`` is the
    ``DocumentEventData`` protobuf (what Eventarc sends) or its JSON form; ``ValueError`` if
    it is neither or names no document."""
    from google.cloud.firestore_v1 import _helpers
    from google.cloud.firestore_v1.types import Document

    try:
        if isinstance(data, bytes | bytearray):
            doc = _event_data().deserialize(bytes(data)).value
        elif isinstance(data, Mapping) and isinstance(data.get("value"), Mapping):
            doc = Document.from_json(json.dumps(data["value"]), ignore_unknown_fields=True)
        else:
            raise ValueError(f"unexpected event data of type {type(data).__name__}")
        decoded = _helpers.decode_dict(doc.fields, None)
    except ValueError:
        raise
    except Exception as err:  # a protobuf or JSON decoding error
        raise ValueError(f"undecodable document event: {err}") from None
    if not isinstance(decoded, dict):  # fields shaped like a vector or a BSON value
        raise ValueError(f"the event's document is a {type(decoded).__name__}, not fields")
    fields: dict[str, Any] = decoded
    if not fields:
        raise ValueError("the event carries no document fields")
    fields.setdefault("name", doc.name.rsplit("/", 1)[-1])
    return fields


_EVENT_DATA: list[Any] = []
_EVENT_DATA_LOCK = threading.Lock()


def _event_data() -> Any:
    """``google.events.cloud.firestore.v1.DocumentEventData`` (value 1, old_value 2), declared
    over the Firestore client's ``Document``, whose wire format the event's document shares."""
    with _EVENT_DATA_LOCK:
        if _EVENT_DATA:
            return _EVENT_DATA[0]
        import proto  # type: ignore[import-untyped]
        from google.cloud.firestore_v1.types import Document

        class DocumentEventData(proto.Message):  # type: ignore[misc]
            value = proto.Field(proto.MESSAGE, number=1, message=Document)
            old_value = proto.Field(proto.MESSAGE, number=2, message=Document)

        _EVENT_DATA.append(DocumentEventData)
        return DocumentEventData


class LocalStepDocuments(Driven):
    """An in-process ``legacy_steps`` with its on-create trigger: each new document is run
    once by ``run``; a retryable answer (5xx, or no answer) runs it again after the queue's
    backoff, as Eventarc's retry policy would. Driven like the local dispatcher:
    ``run_until_idle`` on a virtual clock, ``start`` on threads."""

    thread_name = "legacy"

    def __init__(
        self,
        run: Callable[[Mapping[str, Any]], Answer],
        clock: Clock,
        pipeline: Pipeline,
    ) -> None:
        self.run = run
        self.clock = clock
        self.pipeline = pipeline
        self.documents: dict[str, dict[str, Any]] = {}
        self.created = 0
        self.deliveries = 0
        self._queue: list[tuple[float, int, str, int]] = []  # eta, seq, doc id, tries
        self._seq = itertools.count()
        self._inflight = 0
        super().__init__()

    def create(self, doc_id: str, data: Mapping[str, Any]) -> None:
        with self._cond:
            now = self.clock.now()
            old = self.documents.get(doc_id)
            if old is not None and old["expire_at"].timestamp() > now:
                raise AlreadyExists(f"step document {doc_id} exists")
            self.documents[doc_id] = dict(data)
            self.created += 1
            heapq.heappush(self._queue, (now, next(self._seq), doc_id, 0))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight

    def _pick(self, now: float) -> tuple[tuple[float, int, str, int] | None, float | None]:
        if not self._queue:
            return None, None
        if self._queue[0][0] > now:
            return None, self._queue[0][0]
        self._inflight += 1
        return heapq.heappop(self._queue), None

    def _deliver(self, item: tuple[float, int, str, int]) -> None:
        _, _, doc_id, tries = item
        document = self.documents[doc_id]
        try:
            status: int | None = self.run(document).status
        except Exception:  # a crash of the function: Eventarc delivers the event again
            log.exception("legacy step %s failed", doc_id)
            status = None
        with self._cond:
            self.deliveries += 1
            self._inflight -= 1
            if (status is None or status >= 500) and tries + 1 < MAX_TRIES:
                retry = self.pipeline.queues[document["queue"]].retry
                eta = self.clock.now() + retry.backoff(tries + 1)
                heapq.heappush(self._queue, (eta, next(self._seq), doc_id, tries + 1))
            self._cond.notify_all()
