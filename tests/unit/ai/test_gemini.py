"""GeminiProvider with the real google-genai client against the local HTTP stub."""

from __future__ import annotations

import base64
import json
import logging

import pytest

import schemas
from handlers.ai.port import (
    LessonText,
    PermanentProviderError,
    StructureInputs,
    TransientProviderError,
)
from tests.unit.ai.conftest import KEY
from tests.unit.ai.stub_server import (
    FILE_DELETE,
    FILE_GET,
    GENERATE,
    UPLOAD,
    UPLOAD_START,
    Canned,
    camel_keys,
    canned_document,
    gemini_answer,
    gemini_blocked,
    gemini_error,
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


def generate_requests(stub):
    return [camel_keys(s.json) for s in stub.seen(GENERATE)]


def test_generate_structure_asks_for_schema_json_and_meters_the_call(stub, make_gemini):
    stub.queue(GENERATE, gemini_answer(STRUCTURE, prompt_tokens=1000, output_tokens=500))
    result = make_gemini(model="gemini-2.5-flash").generate_structure(INPUTS)

    assert result.data == STRUCTURE
    (request,) = generate_requests(stub)
    config = request["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"] == ["title", "summary", "modules"]
    assert "$schema" not in config["responseJsonSchema"]
    assert "Rivers" in request["contents"][0]["parts"][0]["text"]
    assert stub.seen(GENERATE)[0].path == "/v1/models/gemini-2.5-flash:generateContent"
    assert result.metering == {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "prompt_version": "structure@1",
        "input_tokens": 1000,
        "output_tokens": 500,
        "cost_usd": 0.00155,
        "calls": 1,
    }


def test_analyze_video_uploads_resumably_polls_until_active_and_cleans_up(stub, make_gemini, video):
    stub.processing_polls = 3
    stub.auto = True
    result = make_gemini().analyze_video(video, TRANSCRIPT, scene_times=[0.0, 12.5])

    schemas.validate("ai/video_analysis", result.data)
    start, upload = stub.seen(UPLOAD_START)[0], stub.seen(UPLOAD)[-1]
    assert start.path == "/upload/v1/files"
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-type"] == "video/mp4"
    assert "finalize" in upload.headers["x-goog-upload-command"]
    assert b"".join(s.body for s in stub.seen(UPLOAD)) == video.read_bytes()
    assert len(stub.seen(FILE_GET)) == 3  # PROCESSING, PROCESSING, ACTIVE
    (request,) = generate_requests(stub)
    file_part = request["contents"][0]["parts"][0]["fileData"]
    assert file_part["mimeType"] == "video/mp4" and file_part["fileUri"].endswith(
        stub.seen(FILE_DELETE)[0].path.rsplit("/", 1)[-1]
    )
    assert "12.5" in request["contents"][0]["parts"][1]["text"]  # the scene times
    assert result.metering["prompt_version"] == "analyze_video@1"


def test_frames_go_inline_as_image_parts(stub, make_gemini, frames):
    stub.auto = True
    result = make_gemini().analyze_frames(frames)

    assert [f["name"] for f in result.data["frames"]] == ["frame-0", "frame-1"]
    parts = generate_requests(stub)[0]["contents"][0]["parts"]
    images = [p["inlineData"] for p in parts if "inlineData" in p]
    assert [i["mimeType"] for i in images] == ["image/jpeg", "image/jpeg"]
    # base64url in this SDK; Google's JSON parser accepts either alphabet
    assert base64.urlsafe_b64decode(images[1]["data"]) == frames[1].path.read_bytes()


def test_add_interactivity_answers_every_lesson(stub, make_gemini):
    stub.auto = True
    lessons = [LessonText(i, f"L{i}", i * 10.0, i * 10.0 + 10, "talk", "slide") for i in range(3)]
    result = make_gemini().add_interactivity(STRUCTURE, lessons, per_lesson=3)
    assert [len(q["questions"]) for q in result.data["lessons"]] == [3, 3, 3]
    assert result.metering["prompt_version"] == "interactivity@1"


def test_an_invalid_answer_is_repaired_once_naming_the_errors(stub, make_gemini):
    broken = {**STRUCTURE, "modules": []}
    stub.queue(GENERATE, gemini_answer(broken), gemini_answer(STRUCTURE))
    result = make_gemini().generate_structure(INPUTS)

    assert result.data == STRUCTURE
    assert result.metering["calls"] == 2
    assert result.metering["input_tokens"] == 240
    repair = generate_requests(stub)[1]["contents"]
    assert [c["role"] for c in repair] == ["user", "model", "user"]
    assert json.loads(repair[1]["parts"][0]["text"]) == broken
    assert "modules" in repair[2]["parts"][0]["text"]
    assert "should be non-empty" in repair[2]["parts"][0]["text"]


def test_an_answer_invalid_twice_is_a_permanent_failure_listing_the_errors(stub, make_gemini):
    stub.queue(GENERATE, gemini_answer("not json at all"), gemini_answer({"title": "x"}))
    with pytest.raises(PermanentProviderError) as caught:
        make_gemini().generate_structure(INPUTS)

    assert caught.value.retryable is False
    assert "'summary' is a required property" in str(caught.value)
    assert len(stub.seen(GENERATE)) == 2


def test_429_is_retried_by_the_sdk(stub, make_gemini):
    stub.queue(GENERATE, gemini_error(429, "slow down"), gemini_answer(STRUCTURE))
    result = make_gemini().generate_structure(INPUTS)
    assert result.data == STRUCTURE
    assert len(stub.seen(GENERATE)) == 2


def test_500_until_retries_run_out_is_transient_with_retry_after(stub, make_gemini):
    stub.queue(GENERATE, *[gemini_error(500, "boom", retry_after="7")] * 3)
    with pytest.raises(TransientProviderError) as caught:
        make_gemini(attempts=3).generate_structure(INPUTS)

    assert caught.value.retryable is True
    assert caught.value.retry_after_s == 7.0
    assert "HTTP 500" in str(caught.value)
    assert len(stub.seen(GENERATE)) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_permanent_and_not_retried(stub, make_gemini, status):
    stub.queue(GENERATE, gemini_error(status, "API key not valid"))
    with pytest.raises(PermanentProviderError, match=f"HTTP {status}"):
        make_gemini().generate_structure(INPUTS)
    assert len(stub.seen(GENERATE)) == 1


def test_a_blocked_prompt_or_safety_stop_is_permanent(stub, make_gemini):
    stub.queue(GENERATE, gemini_blocked("PROHIBITED_CONTENT"))
    with pytest.raises(PermanentProviderError, match="blocked the prompt"):
        make_gemini().generate_structure(INPUTS)
    stub.queue(GENERATE, gemini_answer("", finish_reason="SAFETY"))
    with pytest.raises(PermanentProviderError, match="SAFETY"):
        make_gemini().generate_structure(INPUTS)


def test_a_file_that_stays_processing_is_transient(stub, make_gemini, video):
    stub.processing_polls = 10_000
    with pytest.raises(TransientProviderError, match="still processing"):
        make_gemini(poll_timeout_s=0.05).analyze_video(video, TRANSCRIPT, scene_times=[])
    assert not stub.seen(GENERATE)


def test_a_failed_upload_start_is_mapped(stub, make_gemini, video):
    stub.queue(UPLOAD_START, gemini_error(403, "permission denied"))
    with pytest.raises(PermanentProviderError, match=r"upload: .*HTTP 403"):
        make_gemini().analyze_video(video, TRANSCRIPT, scene_times=[])


def test_a_timeout_is_transient(stub, make_gemini):
    stub.queue(GENERATE, Canned(body={}, delay_s=1.5))
    with pytest.raises(TransientProviderError, match="Timeout"):
        make_gemini(timeout_s=0.2, attempts=1).generate_structure(INPUTS)


def test_no_server_is_transient(make_gemini):
    with pytest.raises(TransientProviderError, match="ConnectError"):
        make_gemini(base_url="http://127.0.0.1:9", attempts=1).generate_structure(INPUTS)


def test_the_key_never_reaches_logs_errors_or_metering(stub, make_gemini, video, caplog):
    caplog.set_level(logging.DEBUG)
    stub.auto = True
    texts = []
    provider = make_gemini()
    texts.append(repr(provider) + repr(provider.config))
    texts.append(json.dumps(provider.analyze_video(video, TRANSCRIPT, scene_times=[]).metering))
    stub.queue(GENERATE, gemini_error(401, f"API key not valid: {KEY}"))
    stub.queue(GENERATE, *[gemini_error(503, "unavailable")] * 3)
    for _ in range(2):
        with pytest.raises((PermanentProviderError, TransientProviderError)) as caught:
            provider.generate_structure(INPUTS)
        texts.append(str(caught.value))
    assert stub.seen(GENERATE)[0].headers["x-goog-api-key"] == KEY  # it was sent, as a header
    assert "[redacted]" in texts[2]
    assert caplog.records  # the SDK did log (retries, requests)
    for text in [caplog.text, *texts]:
        assert KEY not in text
