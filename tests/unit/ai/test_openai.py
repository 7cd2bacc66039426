"""OpenAIProvider with the real openai client against the local HTTP stub."""

from __future__ import annotations

import base64
import json

import pytest

import schemas
from handlers.ai.port import (
    LessonText,
    PermanentProviderError,
    StructureInputs,
    TransientProviderError,
)
from tests.unit.ai.stub_server import (
    CHAT,
    Canned,
    canned_document,
    openai_answer,
    openai_error,
)

TRANSCRIPT = {
    "language": "en",
    "duration_s": 40.0,
    "segments": [{"start": 0.0, "end": 4.0, "text": "Welcome to the lecture."}],
}
ANALYSIS = canned_document("video_analysis", {"duration_s": 40.0})
STRUCTURE = canned_document("course_structure", {"duration_s": 40.0, "title": "Rivers"})
INPUTS = StructureInputs(
    title="Rivers",
    language="en",
    duration_s=40.0,
    transcript=TRANSCRIPT,
    video_analysis=ANALYSIS,
    slides=[{"name": "frame-0", "t": 0.0, "title": "Rivers", "body": []}],
)
FAST = {"retry_after_ms": "1"}  # keeps the SDK's own backoff tiny


def chat_requests(stub):
    return [s.json for s in stub.seen(CHAT)]


def walk_objects(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from walk_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from walk_objects(value)


def test_generate_structure_uses_a_strict_json_schema_and_meters_the_call(stub, make_openai):
    stub.queue(CHAT, openai_answer(STRUCTURE, prompt_tokens=1000, completion_tokens=500))
    result = make_openai(model="gpt-4.1-mini").generate_structure(INPUTS)

    assert result.data == STRUCTURE
    (request,) = chat_requests(stub)
    assert request["model"] == "gpt-4.1-mini"
    fmt = request["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "course_structure"
    objects = list(walk_objects(fmt["json_schema"]["schema"]))
    assert len(objects) == 3
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    assert "minItems" not in json.dumps(fmt) and "minimum" not in json.dumps(fmt)
    assert result.metering == {
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "prompt_version": "structure@1",
        "input_tokens": 1000,
        "output_tokens": 500,
        "cost_usd": 0.0012,
        "calls": 1,
    }


def test_frames_go_as_image_url_data_urls(stub, make_openai, frames):
    stub.auto = True
    result = make_openai().analyze_frames(frames)

    assert [f["name"] for f in result.data["frames"]] == ["frame-0", "frame-1"]
    content = chat_requests(stub)[0]["messages"][1]["content"]
    urls = [c["image_url"]["url"] for c in content if c["type"] == "image_url"]
    assert len(urls) == 2 and urls[1].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(urls[1].split(",", 1)[1]) == frames[1].path.read_bytes()


def test_analyze_video_works_from_the_transcript_and_scene_times(stub, make_openai, video):
    stub.auto = True
    result = make_openai().analyze_video(video, TRANSCRIPT, scene_times=[0.0, 12.5])

    schemas.validate("ai/video_analysis", result.data)
    assert [s.route for s in stub.seen()] == [CHAT]  # no upload: OpenAI takes no video
    text = chat_requests(stub)[0]["messages"][1]["content"][0]["text"]
    assert "Welcome to the lecture." in text and "12.5" in text
    assert result.metering["prompt_version"] == "analyze_video_text@1"


def test_add_interactivity_answers_every_lesson(stub, make_openai):
    stub.auto = True
    lessons = [LessonText(i, f"L{i}", i * 10.0, i * 10.0 + 10, "talk", "slide") for i in range(2)]
    result = make_openai().add_interactivity(STRUCTURE, lessons, per_lesson=2)
    assert [q["lesson"] for q in result.data["lessons"]] == [0, 1]


def test_an_invalid_answer_is_repaired_once_naming_the_errors(stub, make_openai):
    broken = {**STRUCTURE, "summary": 5}
    stub.queue(CHAT, openai_answer(broken), openai_answer(STRUCTURE))
    result = make_openai().generate_structure(INPUTS)

    assert result.data == STRUCTURE
    assert result.metering["calls"] == 2 and result.metering["output_tokens"] == 160
    messages = chat_requests(stub)[1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert json.loads(messages[2]["content"]) == broken
    assert "summary: 5 is not of type 'string'" in messages[3]["content"]


def test_an_answer_invalid_twice_is_a_permanent_failure_listing_the_errors(stub, make_openai):
    stub.queue(CHAT, openai_answer({"title": 1}), openai_answer({"title": 2}))
    with pytest.raises(PermanentProviderError) as caught:
        make_openai().generate_structure(INPUTS)
    assert caught.value.retryable is False
    assert "'modules' is a required property" in str(caught.value)
    assert len(stub.seen(CHAT)) == 2


def test_a_refusal_is_permanent(stub, make_openai):
    stub.queue(CHAT, openai_answer(None, refusal="I can't help with that."))
    with pytest.raises(PermanentProviderError, match="refused"):
        make_openai().generate_structure(INPUTS)


def test_429_is_retried_by_the_sdk(stub, make_openai):
    stub.queue(CHAT, openai_error(429, "slow down", **FAST), openai_answer(STRUCTURE))
    result = make_openai().generate_structure(INPUTS)
    assert result.data == STRUCTURE
    assert len(stub.seen(CHAT)) == 2


def test_500_until_retries_run_out_is_transient_with_retry_after(stub, make_openai):
    stub.queue(CHAT, *[openai_error(500, "boom", **FAST)] * 3)
    with pytest.raises(TransientProviderError) as caught:
        make_openai(max_retries=2).generate_structure(INPUTS)
    assert caught.value.retry_after_s == pytest.approx(0.001)
    assert "HTTP 500" in str(caught.value)
    assert len(stub.seen(CHAT)) == 3


def test_exhausted_quota_is_permanent_though_429(stub, make_openai):
    stub.queue(CHAT, openai_error(429, "quota", code="insufficient_quota"))
    with pytest.raises(PermanentProviderError, match="insufficient_quota"):
        make_openai(max_retries=0).generate_structure(INPUTS)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_permanent_and_not_retried(stub, make_openai, status):
    stub.queue(CHAT, openai_error(status, "Incorrect API key provided"))
    with pytest.raises(PermanentProviderError, match=f"HTTP {status}"):
        make_openai().generate_structure(INPUTS)
    assert len(stub.seen(CHAT)) == 1


def test_a_timeout_is_transient(stub, make_openai):
    stub.queue(CHAT, Canned(body={}, delay_s=1.5))
    with pytest.raises(TransientProviderError, match="timed out"):
        make_openai(timeout_s=0.2, max_retries=0).generate_structure(INPUTS)


def test_no_server_is_transient(make_openai):
    with pytest.raises(TransientProviderError, match="connect"):
        make_openai(base_url="http://127.0.0.1:9/v1", max_retries=0).generate_structure(INPUTS)
