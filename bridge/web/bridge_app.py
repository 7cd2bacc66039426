"""The bridge's HTTP app: Pub/Sub push endpoints for course requests and events, and reconcile.

Pub/Sub redelivers anything but a 2xx, so a message that can never be accepted (bad base64,
not JSON, schema-invalid, hostile ids or URIs) is acknowledged with 200, logged with the
reason and parked on the dead-letter topic; it never reaches a course. A request that is not a
push envelope at all gets a 4xx, an unauthenticated one 401, a transient failure 503 (retry).
Every error answer is a problem document (RFC 9457).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flask import Flask, Response, request

from bridge.core import InvalidRequest
from bridge.runtime import BridgeRuntime
from handlers.auth import Unauthorized
from handlers.body import BodyTooLarge, flask_limit, read_body
from handlers.media.ssrf import hostile_uri

log = logging.getLogger("coursegen.http")

MAX_BODY_BYTES = 1024 * 1024
COURSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class Rejected(ValueError):
    """A message that can never be accepted: acknowledged and dead-lettered with ``reason``."""


Outcome = tuple[int, dict[str, Any]]


class HeaderLookup(Protocol):
    """What ``push_envelope`` reads headers through: a plain mapping or Flask's ``Headers``
    (which is no ``Mapping``, and looks names up case-insensitively)."""

    def get(self, key: str, /) -> str | None: ...


def problem(status: int, title: str, detail: str) -> Response:
    return respond((status, _problem_body(status, title, detail)))


def ok(**body: Any) -> Response:
    return respond((200, body))


def create_bridge_app(runtime_factory: Callable[[], BridgeRuntime]) -> Flask:
    """``runtime_factory()`` (called once, on the first request) gives ``bridge``, ``verify``,
    ``dead_letter(data, reason, attributes)`` and ``quiet_s``: see ``bridge.runtime.cloud``."""
    app = Flask("coursegen-bridge")
    app.config["MAX_CONTENT_LENGTH"] = flask_limit(MAX_BODY_BYTES)
    holder: dict[str, BridgeRuntime] = {}
    lock = threading.Lock()

    def runtime() -> BridgeRuntime:
        with lock:
            if "rt" not in holder:
                holder["rt"] = runtime_factory()
            return holder["rt"]

    def guarded(handler: Callable[[Any, bytes], Response]) -> Callable[[], Response]:
        def view() -> Response:
            try:
                body = read_body(request, MAX_BODY_BYTES)
            except BodyTooLarge as err:
                return problem(413, "Payload too large", str(err))
            rt = runtime()
            try:
                rt.verify(dict(request.headers), body, request.url)
            except Unauthorized as err:
                log.warning("refused %s: %s", request.path, err)
                return problem(401, "Unauthorized", str(err))
            return handler(rt, body)

        view.__name__ = handler.__name__
        return view

    def course_requests(rt: BridgeRuntime, body: bytes) -> Response:
        envelope = push_envelope(body, request.headers)
        return (
            envelope if isinstance(envelope, Response) else respond(ingest_envelope(rt, envelope))
        )

    def course_events(rt: BridgeRuntime, body: bytes) -> Response:
        envelope = push_envelope(body, request.headers)
        return (
            envelope if isinstance(envelope, Response) else respond(advance_envelope(rt, envelope))
        )

    def reconcile(rt: BridgeRuntime, body: bytes) -> Response:
        return ok(status="reconciled", **rt.bridge.reconcile(rt.quiet_s))

    app.add_url_rule(
        "/pubsub/course-requests", view_func=guarded(course_requests), methods=["POST"]
    )
    app.add_url_rule("/pubsub/course-events", view_func=guarded(course_events), methods=["POST"])
    app.add_url_rule("/reconcile", view_func=guarded(reconcile), methods=["POST"])
    _operator_routes(app, runtime)
    _error_handlers(app)
    return app


def _operator_routes(app: Flask, runtime: Callable[[], BridgeRuntime]) -> None:
    """``POST /operator/courses/<id>/<cancel|pause|resume|redrive>`` with ``{reason, step?,
    at?}`` (``step`` for redrive, ``at`` for resume)."""
    from bridge.ops import operations

    def operate(course_id: str, operation: str) -> Response:
        if operation not in operations.OPERATIONS:
            return problem(404, "Not found", f"no operation {operation!r}")
        if not COURSE_ID.match(course_id):
            return problem(404, "Unknown course", f"no course {course_id!r:.80}")
        body = request.get_data(cache=False)
        rt = runtime()
        try:
            operator = operator_identity(rt, dict(request.headers), body, request.url)
        except Unauthorized as err:
            log.warning("refused %s: %s", request.path, err)
            return problem(401, "Unauthorized", str(err))
        try:
            args = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as err:
            return problem(400, "Malformed JSON", f"the body is not JSON: {err}")
        except RecursionError:
            return problem(400, "Malformed JSON", "the body nests too deeply")
        if not isinstance(args, dict):
            return problem(400, "Malformed JSON", "the body must be a JSON object")
        reason, step, at = args.get("reason"), args.get("step"), args.get("at")
        if not isinstance(reason, str) or not isinstance(step, str | None):
            return problem(422, "Invalid operation", "reason must be a string, step a string")
        if not isinstance(at, str | None):
            return problem(422, "Invalid operation", "at must be an ISO time")
        try:
            result = operations.perform(
                operation,
                rt.bridge.store,
                rt.bridge,
                course_id,
                operator=operator,
                reason=reason,
                step=step,
                at=at,
            )
        except operations.OperationError as err:
            return respond((err.status, err.problem()))
        log.info("operator %s: %s %s (%s)", operator, operation, course_id, reason[:200])
        return respond((200, result))

    app.add_url_rule(
        "/operator/courses/<course_id>/<operation>", view_func=operate, methods=["POST"]
    )


def operator_identity(rt: BridgeRuntime, headers: Mapping[str, str], body: bytes, url: str) -> str:
    """Who calls an operator route: with COURSEGEN_OPERATOR_TOKEN set (local), the bearer of
    that token, named by the ``X-Coursegen-Operator`` header; otherwise the caller the app's
    verifier proves (OIDC in the cloud: the account's email). ``Unauthorized`` if neither."""
    from handlers.auth import allow_all, bearer, header

    token = rt.settings.get("COURSEGEN_OPERATOR_TOKEN")
    if token:
        offered = bearer(headers)
        if not hmac.compare_digest(offered.encode(), token.encode()):
            raise Unauthorized("wrong operator token")
        return header(headers, "X-Coursegen-Operator") or "token"
    if rt.verify is allow_all:
        raise Unauthorized("operator routes need OIDC or COURSEGEN_OPERATOR_TOKEN")
    caller: str = rt.verify(headers, body, url)
    return caller


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(413)
    def too_large(err: Exception) -> Response:
        return problem(413, "Payload too large", f"bodies are at most {MAX_BODY_BYTES}")

    @app.errorhandler(404)
    def not_found(err: Exception) -> Response:
        return problem(404, "Not found", f"no route {request.path}")

    @app.errorhandler(405)
    def not_allowed(err: Exception) -> Response:
        return problem(405, "Method not allowed", f"{request.method} {request.path}")

    @app.errorhandler(Exception)
    def failed(err: Exception) -> Response:
        # Transient (store, network): 503 so Pub/Sub or Scheduler tries again later.
        log.exception("%s failed: %s", request.path, err)
        return problem(503, "Try again later", f"{type(err).__name__}: {err}"[:500])


def push_envelope(body: bytes, headers: HeaderLookup | None = None) -> dict[str, Any] | Response:
    """The Pub/Sub push envelope in ``body``, or a 400 problem if it is not one.

    Eventarc's CloudEvent (``google.cloud.pubsub.topic.v1.messagePublished``) carries the same
    envelope as its data: structured mode (``Content-Type: application/cloudevents+json``,
    the event as the body) and binary mode (``ce-*`` headers, the data as the body) are
    unwrapped to it, so ``coursegen serve`` and the bridge function take both."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        return problem(400, "Not a push envelope", f"the body is not JSON: {err}")
    except RecursionError:  # not transient: a 5xx would have it delivered again forever
        return problem(400, "Not a push envelope", "the body nests too deeply")
    content_type = str((headers or {}).get("Content-Type") or "").lower()
    if content_type.startswith("application/cloudevents+json"):
        if not isinstance(document, dict) or "specversion" not in document:
            return problem(400, "Not a CloudEvent", "a structured CloudEvent needs specversion")
        document = document.get("data")
    envelope = document
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        return problem(400, "Not a push envelope", "expected {message: {data, ...}, ...}")
    return envelope


def message_json(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object carried base64-encoded in ``message.data``; ``Rejected`` otherwise."""
    data = envelope["message"].get("data")
    if not isinstance(data, str) or not data:
        raise Rejected("message.data is missing or not a string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise Rejected(f"message.data is not valid base64: {err}") from None
    try:
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise Rejected(f"message.data is not JSON: {err}") from None
    except RecursionError:
        raise Rejected("message.data is not JSON: it nests too deeply") from None
    if not isinstance(decoded, dict):
        raise Rejected(f"message.data must be a JSON object, not {type(decoded).__name__}")
    return decoded


def _check_request(data: Mapping[str, Any], message_id: str) -> None:
    if message_id and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", message_id):
        raise Rejected(f"hostile messageId {message_id!r:.80}")
    course_id = data.get("courseId")
    if course_id is not None and (not isinstance(course_id, str) or not COURSE_ID.match(course_id)):
        raise Rejected(f"hostile courseId {course_id!r:.80}: must match {COURSE_ID.pattern}")
    uri = data.get("videoUri")
    if isinstance(uri, str):
        reason = hostile_uri(uri)
        if reason:
            raise Rejected(f"hostile videoUri: {reason}")


def _tenant_attribute(message: Mapping[str, Any]) -> str | None:
    """The message's ``tenant`` attribute (checked with the body's, by the request schema)."""
    attributes = message.get("attributes")
    if attributes is None:
        return None
    if not isinstance(attributes, Mapping):
        raise Rejected("message.attributes must be an object")
    tenant = attributes.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise Rejected("the tenant attribute must be a string")
    return tenant


def ingest_envelope(rt: BridgeRuntime, envelope: Mapping[str, Any]) -> Outcome:
    """Ingest the course request a push envelope (or a Pub/Sub CloudEvent's data) carries."""
    message_id = str(envelope["message"].get("messageId") or "")
    try:
        data = message_json(envelope)
        _check_request(data, message_id)
        tenant = _tenant_attribute(envelope["message"])
        course_id = rt.bridge.ingest(data, message_id=message_id or None, tenant=tenant)
    except (Rejected, InvalidRequest) as err:
        return _dead_letter(rt, "course-requests", envelope, str(err))
    return 200, {"status": "accepted", "courseId": course_id}


def advance_envelope(rt: BridgeRuntime, envelope: Mapping[str, Any]) -> Outcome:
    """Advance the course a course-events notification names."""
    try:
        data = message_json(envelope)
        course_id = data.get("courseId")
        if not isinstance(course_id, str) or not COURSE_ID.match(course_id):
            raise Rejected(f"courseId must match {COURSE_ID.pattern}, got {course_id!r:.80}")
    except Rejected as err:
        return _dead_letter(rt, "course-events", envelope, str(err))
    commands = rt.bridge.advance(course_id)
    return 200, {"status": "advanced", "courseId": course_id, "commands": len(commands)}


def respond(outcome: Outcome) -> Response:
    status, body = outcome
    mimetype = "application/json" if status < 400 else "application/problem+json"
    return Response(json.dumps(body), status, mimetype=mimetype)


def _problem_body(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def _dead_letter(
    rt: BridgeRuntime, source: str, envelope: Mapping[str, Any], reason: str
) -> Outcome:
    message = envelope["message"]
    message_id = str(message.get("messageId") or "")[:128]
    log.error("rejected %s message %s: %s", source, message_id or "(no id)", reason)
    data = _original_data(message)
    attributes = {"source": source, "messageId": message_id}
    if isinstance(envelope.get("subscription"), str):
        attributes["subscription"] = envelope["subscription"]
    given = message.get("attributes")
    if isinstance(given, Mapping) and isinstance(given.get("tenant"), str):
        attributes["tenant"] = given["tenant"][:128]  # kept, so a republish still names it
    try:
        rt.dead_letter(data[:MAX_BODY_BYTES], reason, attributes)
    except Exception as err:  # not parked yet: let Pub/Sub deliver it again
        log.error("could not dead-letter %s message %s: %s", source, message_id, err)
        return 503, _problem_body(503, "Dead-letter publish failed", str(err)[:500])
    return 200, {"status": "rejected", "reason": reason}


def _original_data(message: Mapping[str, Any]) -> bytes:
    """The message's bytes as published (its base64 text if that does not decode)."""
    raw = message.get("data")
    if not isinstance(raw, str):
        return json.dumps(message, default=str).encode()
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode()
