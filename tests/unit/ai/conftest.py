"""Fixtures for the AI provider tests: the HTTP stub, providers pointed at it, small test files
(the WAV files made with ffmpeg are in tests/integration/ai/conftest.py)."""

from __future__ import annotations

from pathlib import Path

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
