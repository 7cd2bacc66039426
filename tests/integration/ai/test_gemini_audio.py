"""GeminiProvider's transcription of an ffmpeg-made WAV file, against the local HTTP stub."""

from __future__ import annotations

import pytest

from tests.unit.ai.stub_server import (
    UPLOAD_START,
)


def test_transcribe_uploads_the_audio_and_reads_timed_segments(stub, make_gemini, lecture_wav):
    stub.auto = True
    result = make_gemini().transcribe(lecture_wav, language="en")

    bounds = [t for s in result.data["segments"] for t in (s["start"], s["end"])]
    assert bounds == pytest.approx([0, 2, 3, 5, 6, 8, 9, 11], abs=0.1)
    assert stub.seen(UPLOAD_START)[0].headers["x-goog-upload-header-content-type"] in (
        "audio/wav",
        "audio/x-wav",
    )
    assert result.metering["calls"] == 1
