"""The GCS adapter's own behaviour: on fake-gcs-server (object names, content types, the
prefix), and on a scripted stand-in on 127.0.0.1 for what fake-gcs-server cannot be made to
do (answer 503 or 403, report a size smaller than the body, lose a generation mid-read).
The behaviour every artifact store shares is in tests/contract/test_artifact_store.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.api_core.retry import Retry

from handlers.artifacts import SourceRefused, SourceUnavailable
from handlers.gcs import GcsArtifacts, parse_gs
from tests.emulators import serve, storage_client, storage_emulator, unique

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with storage_emulator() as url:
        yield storage_client(url)


@pytest.fixture
def artifacts(client: Any, tmp_path: Path) -> GcsArtifacts:
    bucket = unique("artifacts")
    client.create_bucket(bucket)
    return GcsArtifacts(f"gs://{bucket}/runs/v1", tmp_path, client=client)


def test_references_name_the_object_and_carry_its_content_type(artifacts: GcsArtifacts) -> None:
    ref = artifacts.put_bytes("c1", "transcript.json", b'{"segments": []}')
    assert ref == f"gs://{artifacts.bucket_name}/runs/v1/c1/transcript.json"
    blob = artifacts.client.bucket(artifacts.bucket_name).get_blob("runs/v1/c1/transcript.json")
    assert blob.content_type == "application/json"


def test_a_local_copy_lands_in_scratch(artifacts: GcsArtifacts, tmp_path: Path) -> None:
    ref = artifacts.put_bytes("c1", "media/audio.wav", b"RIFF....")
    local = artifacts.local_path(ref, tmp_path / "scratch")
    assert local.is_relative_to(tmp_path / "scratch") and local.read_bytes() == b"RIFF...."


def test_a_reference_outside_the_prefix_is_refused(artifacts: GcsArtifacts) -> None:
    with pytest.raises(ValueError, match="prefix"):
        artifacts.get_bytes(f"gs://{artifacts.bucket_name}/elsewhere/c1/x")


def test_a_source_in_the_artifact_bucket_itself_is_read(
    artifacts: GcsArtifacts, tmp_path: Path
) -> None:
    bucket = artifacts.client.bucket(artifacts.bucket_name)
    bucket.blob("uploads/lecture.mp4").upload_from_string(b"\x00\x00\x00\x18ftypmp42")
    dest = tmp_path / "source.bin"
    artifacts.fetch_source(f"gs://{artifacts.bucket_name}/uploads/lecture.mp4", dest, max_bytes=64)
    assert dest.read_bytes() == b"\x00\x00\x00\x18ftypmp42"


def test_parse_gs() -> None:
    assert parse_gs("gs://b/p/q/") == ("b", "p/q")
    assert parse_gs("gs://b") == ("b", "")
    with pytest.raises(ValueError):
        parse_gs("https://b/p")


# ---- a scripted stand-in: the errors and lies a real service may produce ----------------


@dataclass
class Script:
    """Answers the two requests a source read makes: object metadata, then its media."""

    metadata: Callable[[], tuple[int, dict[str, Any]]]
    media: Callable[[dict[str, str]], tuple[int, bytes]]
    requests: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, query = environ["PATH_INFO"], environ.get("QUERY_STRING", "")
        self.requests.append(f"{path}?{query}")
        if path.startswith("/download/"):
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            status, body = self.media(params)
            kind = "application/octet-stream"
        else:
            status, doc = self.metadata()
            body, kind = json.dumps(doc).encode(), "application/json"
        start_response(f"{status} X", [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]


def _object(size: int, generation: int = 7) -> tuple[int, dict[str, Any]]:
    doc = {"bucket": "lectures", "name": "a.mp4", "size": str(size)}
    return 200, {**doc, "generation": str(generation), "metageneration": "1"}


def _error(code: int) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": f"scripted {code}"}}


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Callable[[Script], GcsArtifacts]]:
    with ExitStack() as servers:

        def make(script: Script) -> GcsArtifacts:
            url = servers.enter_context(serve(script))
            fast = Retry(initial=0.05, maximum=0.1, timeout=1.0)  # give up after a second
            client = storage_client(url)
            return GcsArtifacts("gs://artifacts/runs", tmp_path, client, source_retry=fast)

        yield make


def test_a_503_is_transient(scripted: Callable[[Script], GcsArtifacts], tmp_path: Path) -> None:
    store = scripted(Script(metadata=lambda: _error(503), media=lambda q: (500, b"")))
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceUnavailable):
        store.fetch_source("gs://lectures/a.mp4", dest, max_bytes=10**6)
    assert not dest.exists()


def test_a_403_is_permanent(scripted: Callable[[Script], GcsArtifacts], tmp_path: Path) -> None:
    store = scripted(Script(metadata=lambda: _error(403), media=lambda q: (500, b"")))
    with pytest.raises(SourceRefused, match="denied"):
        store.fetch_source("gs://lectures/a.mp4", tmp_path / "s", max_bytes=10**6)


def test_the_stream_is_capped_when_the_metadata_understates_the_size(
    scripted: Callable[[Script], GcsArtifacts], tmp_path: Path
) -> None:
    script = Script(metadata=lambda: _object(size=10), media=lambda q: (200, b"x" * 5000))
    store = scripted(script)
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceRefused, match="exceeds 100 bytes"):
        store.fetch_source("gs://lectures/a.mp4", dest, max_bytes=100)
    assert not dest.exists() and not list(tmp_path.glob(".source.bin.*"))


def test_the_read_is_pinned_to_the_generation_whose_size_was_checked(
    scripted: Callable[[Script], GcsArtifacts], tmp_path: Path
) -> None:
    def media(query: dict[str, str]) -> tuple[int, bytes]:
        return (200, b"v7") if query.get("generation") == "7" else (404, b"")

    store = scripted(Script(metadata=lambda: _object(size=2, generation=7), media=media))
    dest = tmp_path / "source.bin"
    store.fetch_source("gs://lectures/a.mp4", dest, max_bytes=10)
    assert dest.read_bytes() == b"v7"


def test_an_object_replaced_mid_read_is_transient(
    scripted: Callable[[Script], GcsArtifacts], tmp_path: Path
) -> None:
    # The metadata names generation 7; by the time the media is asked for, it is gone.
    store = scripted(Script(metadata=lambda: _object(size=2), media=lambda q: (404, b"")))
    dest = tmp_path / "source.bin"
    with pytest.raises(SourceUnavailable, match="changed while it was read"):
        store.fetch_source("gs://lectures/a.mp4", dest, max_bytes=10)
    assert not dest.exists()
