"""Archives in Cloud Storage (fake-gcs-server): written once, verified, reused after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.ops.archive import archive_ended, verify_archive
from bridge.ops.archive_targets import BucketTarget, read_location
from tests.emulators import storage_client, storage_emulator, unique
from tests.unit.ops.test_archive import LATER, SimulatedCrash, data, histories, open_store

__all__ = ["data"]
pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with storage_emulator() as url:
        yield storage_client(url)


def test_archives_go_to_a_bucket_and_a_crash_after_the_upload_reuses_it(
    data: Path, client: Any
) -> None:
    bucket = unique("archive")
    client.create_bucket(bucket)
    target = BucketTarget(f"gs://{bucket}/retention/v1", client)
    store = open_store(data)
    before = histories(store)

    def crash(point: str, course_id: str) -> None:
        if point == "uploaded":
            raise SimulatedCrash(course_id)

    with pytest.raises(SimulatedCrash) as crashed:
        archive_ended(store, target, before=LATER, crash=crash)
    first = str(crashed.value)
    assert store.head(first) is not None  # uploaded, not purged: still live
    report = archive_ended(store, target, before=LATER)
    assert report.reused == [first] and len(report.purged) == 4
    names = sorted(b.name for b in client.list_blobs(bucket))
    assert names == sorted(f"retention/v1/{c}.jsonl" for c in report.purged)
    for course_id in report.purged:
        tomb = store.tombstone(course_id)
        assert tomb is not None and tomb.location == f"gs://{bucket}/retention/v1/{course_id}.jsonl"
        found = verify_archive(read_location(tomb.location, client))
        assert [e.hash for e in found.events] == before[course_id]
    store.close()
