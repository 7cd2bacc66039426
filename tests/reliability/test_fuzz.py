"""Bounded hypothesis fuzzing of message parsing, task payload validation and the reducer."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from bridge.web.bridge_app import (
    Rejected,
    create_bridge_app,
    message_json,
    push_envelope,
)
from handlers.auth import HmacVerifier, Unauthorized
from handlers.endpoint import MAX_BODY_BYTES
from handlers.media.ssrf import hostile_uri
from statemachine.audit import verify
from statemachine.envelope import NewEvent
from statemachine.errors import EventTooLarge, TransitionNotAllowed
from statemachine.events import EVENT_TYPES
from statemachine.store.appending import prepare_append
from tests.reliability.conftest import SECRET, World, make_world

# Bounded for CI: 200 examples each, derandomized so a run is repeatable (about 5 s in all).
# COURSEGEN_FUZZ_EXAMPLES=5000 runs a longer hunt with fresh random examples.
EXAMPLES = int(os.environ.get("COURSEGEN_FUZZ_EXAMPLES", "0"))
pytestmark = pytest.mark.timeout(0 if EXAMPLES else 120)  # a longer hunt has no limit
FUZZ = settings(
    max_examples=EXAMPLES or 200,
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hosts = st.sampled_from(
    ["b", "example.com", "127.0.0.1", "[::1]", "2130706433", "0x7f.1", "169.254.169.254", ""]
) | st.text(max_size=15)
uris = st.builds(
    "{}{}/{}".format,
    st.sampled_from(["gs://", "https://", "http://", "file://", "/", "", "ftp://"]),
    hosts,
    st.text(max_size=15),
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "videoUri": uris | json_values,
        "title": st.text(max_size=320) | json_values,
        "language": st.sampled_from(["en", "de-CH", "xx;", ""]) | json_values,
        "courseId": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,9}", fullmatch=True) | st.text(),
        "options": st.dictionaries(
            st.sampled_from(["provider", "maxFrames", "sceneThreshold", "shell"]), json_values
        )
        | json_values,
        "extra": json_values,
    },
)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("fuzz"))


def envelope_bytes(data: bytes | str | Any, message_id: Any) -> bytes:
    payload = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    return json.dumps({"message": {"data": payload, "messageId": message_id}}).encode()


# -- message parsing ----------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=300))
def test_push_envelope_parsing_never_raises(body: bytes) -> None:
    envelope = push_envelope(body)
    if isinstance(envelope, dict):
        with contextlib.suppress(Rejected):  # acked and dead-lettered
            message_json(envelope)


@FUZZ
@given(
    data=requests.map(lambda r: json.dumps(r).encode()) | st.binary(max_size=80) | json_values,
    message_id=st.text(max_size=20) | json_values,
)
def test_course_requests_are_accepted_or_refused_never_5xx(
    fuzz_world: World, data: Any, message_id: Any
) -> None:
    client = create_bridge_app(lambda: fuzz_world).test_client()
    before = fuzz_world.fingerprint()
    dead = len(fuzz_world.dead)
    r = client.post(
        "/pubsub/course-requests",
        data=envelope_bytes(data, message_id),
        content_type="application/json",
    )
    assert r.status_code in (200, 400), (r.status_code, r.data[:300])
    if r.status_code == 200 and r.json["status"] == "accepted":
        request = json.loads(base64.b64decode(envelope_json(data)))
        schemas.validate("course_request", request)  # only what the schema allows gets in
        assert hostile_uri(request["videoUri"]) is None
    else:
        assert fuzz_world.fingerprint() == before
        assert len(fuzz_world.dead) == dead + (r.status_code == 200)


def envelope_json(data: Any) -> str:
    return base64.b64encode(data).decode() if isinstance(data, bytes) else str(data)


# -- task payload validation --------------------------------------------------------------
def mutations(world: World) -> st.SearchStrategy[bytes]:
    genuine = world.payload("course0")

    def mutate(changes: dict[str, Any], drop: list[str]) -> bytes:
        p = copy.deepcopy(genuine)
        for key, value in changes.items():
            if key.startswith("data.") and isinstance(p.get("data"), dict):
                p["data"][key[5:]] = value
            else:
                p[key] = value
        for key in drop:
            p.pop(key, None)
        return json.dumps(p).encode()

    keys = st.sampled_from(
        [*genuine, "data.task", "data.shard", "data.generation", "data.variant", "data.x", "x"]
    )
    return st.builds(
        mutate, st.dictionaries(keys, json_values, max_size=3), st.lists(keys, max_size=2)
    )


@FUZZ
@given(data=st.data())
def test_task_payloads_are_answered_never_crash(fuzz_world: World, data: st.DataObject) -> None:
    body = data.draw(mutations(fuzz_world) | st.binary(max_size=200) | json_values.map(_dump))
    headers = fuzz_world.headers(body)
    before = fuzz_world.fingerprint()
    answer = fuzz_world.endpoint.handle(headers, body, "local://fuzz")
    assert answer.status in (200, 400, 404, 413, 422), answer
    if answer.status >= 400:
        assert answer.body["detail"] and fuzz_world.fingerprint() == before


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()[: MAX_BODY_BYTES + 1]


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["Authorization", "authorization", "X-Other"]),
        st.text(max_size=120) | st.from_regex(r"Bearer v1\.[0-9]{1,14}\.[0-9a-f]{0,64}"),
    ),
    st.binary(max_size=50),
)
def test_the_token_check_only_ever_refuses(headers: dict[str, str], body: bytes) -> None:
    verifier = HmacVerifier(SECRET, lambda: 1_790_000_000.0)
    try:
        verifier(headers, body, "")
    except Unauthorized:
        return
    raise AssertionError("a random token was accepted")


# -- the reducer --------------------------------------------------------------------------
TASKS = ["prepare_video", "transcribe", "analyze_frames#0", "finalize", "x/y", ""]
names = st.sampled_from(TASKS) | st.text(max_size=10)
keys = st.builds("c1:{}:{}".format, st.sampled_from(TASKS), st.integers(0, 3)) | st.text(
    max_size=12
)
small_ints = st.integers(min_value=-2, max_value=12)
strings = st.text(max_size=40) | st.just("x" * 1_000_000)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "video_uri": st.sampled_from(["gs://b/a.mp4", ""]) | strings,
    "title": st.just("T") | strings,
    "language": st.just("en") | st.text(max_size=5),
    "options": st.just({}) | st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    "request_id": st.none() | st.text(max_size=10),
    "variant": st.sampled_from(["cloudtasks", "legacy", "other"]),
    "task": names,
    "step": st.sampled_from(["prepare_video", "transcribe", "analyze_frames", "nope"]),
    "shard": st.none() | small_ints,
    "generation": small_ints,
    "idempotency_key": keys,
    "queue": st.sampled_from(["video-preparation-queue", "ai-analysis-queue", "nope"]),
    "input": st.just({}) | st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    "attempt": small_ints,
    "attempts": small_ints,
    "outputs": st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=2) | json_values,
    "summary": st.dictionaries(st.text(max_size=6), json_values, max_size=3) | json_values,
    "metering": st.just({}) | json_values,
    "duration_ms": small_ints | st.integers(),
    "fraction": st.floats(min_value=0, max_value=1) | json_values,
    "error_type": st.text(max_size=10),
    "message": strings,
    "error": strings,
    "detail": strings,
    "outcome": st.sampled_from(["succeeded", "failed", "other"]) | json_values,
    "retryable": st.booleans() | json_values,
    "reason": st.just("r") | strings,
    "tasks": st.lists(names, max_size=3).map(tuple) | json_values,
    "pipeline_version": st.none() | small_ints,
    "pipeline_digest": st.none() | st.sampled_from(["0" * 64, "x"]) | st.text(max_size=8),
    "from_version": small_ints,
    "to_version": small_ints,
    "digest": st.sampled_from(["0" * 64, ""]) | st.text(max_size=8),
    "tenant": st.sampled_from(["acme", "default", ""]) | st.none() | strings,
    "position": small_ints | json_values,
    "held": st.none() | st.just("over budget") | strings,
}


def event_of(cls: type[Any]) -> st.SearchStrategy[Any]:
    fields = cls.__dataclass_fields__
    wanted = {name: FIELDS[name] for name in fields if name in FIELDS}
    return st.builds(lambda kw: _build(cls, kw), st.fixed_dictionaries(wanted))


def _build(cls: type[Any], kwargs: dict[str, Any]) -> Any:
    return cls(**kwargs)


events = st.one_of([event_of(cls) for cls in EVENT_TYPES.values()])
ALLOWED = (TransitionNotAllowed, schemas.SchemaError, EventTooLarge)


@FUZZ
@given(st.lists(st.lists(events, min_size=1, max_size=3), min_size=1, max_size=25))
def test_random_histories_are_refused_cleanly_or_fold_consistently(
    batches: list[list[Any]],
) -> None:
    snapshot: Any = None
    version = 0
    accepted = []
    for batch in batches:
        new = [NewEvent(event=e, occurred_at="2026-11-28T10:00:00Z", actor="fuzz") for e in batch]
        try:
            prepared = prepare_append("c1", copy.deepcopy(snapshot), version, new)
        except ALLOWED:
            continue
        snapshot, version = prepared.snapshot, prepared.version
        accepted.extend(prepared.envelopes)
    if accepted:
        verify("c1", accepted, prepared_head(snapshot))  # the fold of what was kept is the head


def prepared_head(snapshot: Any) -> Any:
    from statemachine.store.appending import Prepared

    return Prepared([], snapshot).head()
