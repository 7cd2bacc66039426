"""Fixtures for the AI provider tests: the HTTP stub, providers pointed at it, test media."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from handlers.ai.gemini import GeminiConfig, GeminiProvider
from handlers.ai.openai_provider import OpenAIConfig, OpenAIProvider
from handlers.ai.port import FrameInput
from tests.unit.ai.stub_server import StubServer

KEY = "sk-test-SECRET-key-4242"  # grepped for in logs, errors and metering


@pytest.fixture
def stub():
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_gemini(stub):
    def make(**overrides) -> GeminiProvider:
        fields = dict(
            api_key=KEY,
            base_url=stub.gemini_base_url,
            timeout_s=10.0,
            attempts=3,
            initial_delay_s=0.01,
            max_delay_s=0.02,
            jitter_s=0.0,
            poll_interval_s=0.01,
            poll_timeout_s=5.0,
        )
        fields.update(overrides)
        return GeminiProvider(GeminiConfig(**fields))

    return make


@pytest.fixture
def make_openai(stub):
    def make(**overrides) -> OpenAIProvider:
        fields = dict(api_key=KEY, base_url=stub.openai_base_url, timeout_s=10.0, max_retries=2)
        fields.update(overrides)
        return OpenAIProvider(OpenAIConfig(**fields))

    return make


def tone_wav(path: Path, *, seconds: float = 12.0, period: float = 3.0, tone: float = 2.0) -> Path:
    """16 kHz mono WAV: ``tone`` s of 440 Hz, then silence, every ``period`` s."""
    expr = f"if(lt(mod(t\\,{period})\\,{tone})\\,0.5*sin(2*PI*440*t)\\,0)"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc={expr}:s=16000:d={seconds}",
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
            "-fflags",
            "+bitexact",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="session")
def lecture_wav(tmp_path_factory) -> Path:
    """12 s: tones at 0-2, 3-5, 6-8, 9-11 s, silence between (384 kB)."""
    return tone_wav(tmp_path_factory.mktemp("audio") / "lecture.wav")


@pytest.fixture(scope="session")
def frames(tmp_path_factory) -> list[FrameInput]:
    folder = tmp_path_factory.mktemp("frames")
    out = []
    for i, colour in enumerate(("white", "navy")):
        path = folder / f"frame-{i}.jpg"
        Image.new("RGB", (64, 36), colour).save(path, "JPEG")
        out.append(FrameInput(name=f"frame-{i}", t=float(i * 10), path=path))
    return out


@pytest.fixture
def video(tmp_path) -> Path:
    """Not a real video: the stub only stores the bytes."""
    path = tmp_path / "lecture.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096)
    return path
