"""OpenAIProvider's transcription of an ffmpeg-made WAV file, against the local HTTP stub."""

from __future__ import annotations

import json
import logging

import pytest

from handlers.ai.port import (
    PermanentProviderError,
    TransientProviderError,
)
from tests.unit.ai.conftest import KEY
from tests.unit.ai.stub_server import (
    CHAT,
    TRANSCRIBE,
    multipart_fields,
    openai_error,
    openai_transcription,
    voiced_regions,
)
from tests.unit.ai.test_openai import FAST, INPUTS


def test_transcribe_asks_for_verbose_json_segments(stub, make_openai, lecture_wav):
    stub.queue(
        TRANSCRIBE,
        openai_transcription([(0.0, 2.0, " Hello."), (3.0, 5.0, "Rivers.")], duration=12.0),
    )
    result = make_openai().transcribe(lecture_wav, language="en-GB")

    assert result.data == {
        "language": "en",
        "duration_s": 12.0,
        "segments": [
            {"start": 0.0, "end": 2.0, "text": "Hello."},
            {"start": 3.0, "end": 5.0, "text": "Rivers."},
        ],
    }
    (seen,) = stub.seen(TRANSCRIBE)
    fields = multipart_fields(seen.headers["content-type"], seen.body)
    assert fields["model"] == b"whisper-1" and fields["response_format"] == b"verbose_json"
    assert fields["language"] == b"en"
    assert fields["timestamp_granularities[]"] == b"segment"
    assert fields["file"] == lecture_wav.read_bytes()
    assert result.metering == {
        "provider": "openai",
        "model": "whisper-1",
        "prompt_version": "whisper-1:verbose_json",
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0012,
        "calls": 1,
        "audio_seconds": 12.0,
    }


def test_long_audio_is_split_in_silences_and_segments_stitched(stub, make_openai, lecture_wav):
    stub.auto = True  # the stub "hears" the tones of each chunk it receives
    limit = 150_000  # the 384 kB file needs four chunks of at most ~4.4 s
    result = make_openai(upload_limit_bytes=limit).transcribe(lecture_wav, language="en")

    uploads = [
        multipart_fields(s.headers["content-type"], s.body)["file"] for s in stub.seen(TRANSCRIBE)
    ]
    assert len(uploads) == 4
    assert all(len(u) <= limit for u in uploads)
    # every chunk starts and ends in silence: no tone is cut in two
    assert [len(voiced_regions(u)[1]) for u in uploads] == [1, 1, 1, 1]
    bounds = [t for s in result.data["segments"] for t in (s["start"], s["end"])]
    assert bounds == pytest.approx([0, 2, 3, 5, 6, 8, 9, 11], abs=0.1)
    assert result.data["duration_s"] == pytest.approx(12.0, abs=0.05)
    assert result.metering["calls"] == 4
    assert result.metering["audio_seconds"] == pytest.approx(12.0, abs=0.05)


def test_the_key_never_reaches_logs_errors_or_metering(stub, make_openai, lecture_wav, caplog):
    caplog.set_level(logging.DEBUG)
    stub.auto = True
    provider = make_openai()
    texts = [repr(provider), repr(provider.config)]
    texts.append(json.dumps(provider.transcribe(lecture_wav, language="en").metering))
    texts.append(json.dumps(provider.generate_structure(INPUTS).metering))
    stub.queue(CHAT, openai_error(401, f"Incorrect API key provided: {KEY}"))
    stub.queue(CHAT, *[openai_error(503, "unavailable", **FAST)] * 3)
    for _ in range(2):
        with pytest.raises((PermanentProviderError, TransientProviderError)) as caught:
            provider.generate_structure(INPUTS)
        texts.append(str(caught.value))
    assert stub.seen(CHAT)[0].headers["authorization"] == f"Bearer {KEY}"
    assert "[redacted]" in texts[4]
    assert caplog.records  # the SDK did log (requests, retries)
    for text in [caplog.text, *texts]:
        assert KEY not in text
