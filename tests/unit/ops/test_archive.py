"""Retention: archive ended courses, verify, purge; a crash anywhere loses and doubles nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.ops import operations
from bridge.ops.archive import archive_ended, parse_duration, verify_archive
from bridge.ops.archive_targets import FolderTarget
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from handlers.registry import PermanentStepError, StepContext, StepFn, StepResult
from statemachine.errors import IntegrityError
from statemachine.pipeline import default_pipeline
from statemachine.ports import EventStore
from statemachine.timefmt import iso

SETTINGS = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_TASK_SECRET": "t"}


class SimulatedCrash(Exception):
    pass


def steps() -> dict[str, StepFn]:
    """No-op steps; analyze_video fails permanently for a course titled "fails", once."""
    base = dict(noop_steps(default_pipeline()))
    inner = base["analyze_video"]

    def analyze_video(ctx: StepContext) -> StepResult:
        request = ctx.course.request or {}
        if request.get("title") == "fails" and ctx.task.generation == 1:
            raise PermanentStepError("injected")
        return inner(ctx)

    base["analyze_video"] = analyze_video
    return base


def runtime(data: Path) -> Runtime:
    return embedded(data, settings=Settings.from_env(SETTINGS), steps=steps(), clock=VirtualClock())


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    """Two completed courses, a failed one, a cancelled one and a paused (active) one."""
    rt = runtime(tmp_path / "data")
    for i, title in enumerate(["one", "two", "fails", "cancelled", "paused"]):
        rt.bridge.ingest({"videoUri": f"gs://b/{i}.mp4", "title": title}, message_id=title)
    ids = {h.snapshot["request"]["title"]: h.course_id for h in rt.store.courses()}
    for title, op in (("cancelled", "cancel"), ("paused", "pause")):
        operations.perform(op, rt.store, rt.bridge, ids[title], operator="t", reason="test")
    rt.run_until_idle()
    rt.close()
    yield tmp_path / "data"


def open_store(data: Path) -> EventStore:
    rt = runtime(data)
    rt.dispatcher.stop()
    return rt.store


def histories(store: EventStore) -> dict[str, list[str]]:
    return {c: [e.hash for e in store.load(c)] for c in store.course_ids()}


LATER = iso(1_790_000_000.0 + 86400)  # every course above is older than this


def test_ended_courses_are_archived_verified_and_purged(data: Path, tmp_path: Path) -> None:
    store = open_store(data)
    before = histories(store)
    statuses = {c: store.head(c).status for c in before}  # type: ignore[union-attr]
    report = archive_ended(store, FolderTarget(tmp_path / "arch"), before=LATER)
    ended = sorted(c for c, s in statuses.items() if s != "paused")
    assert len(ended) == 4 and sorted(report.purged) == ended == sorted(report.archived)
    assert list(store.course_ids()) == [c for c, s in statuses.items() if s == "paused"]
    for c in ended:
        found = verify_archive((tmp_path / "arch" / f"{c}.jsonl").read_bytes())
        assert [e.hash for e in found.events] == before[c] and found.status == statuses[c]
        tomb = store.tombstone(c)
        assert tomb is not None and tomb.last_hash == before[c][-1]
        assert tomb.location == (tmp_path / "arch" / f"{c}.jsonl").resolve().as_uri()
    assert sorted(p.name for p in (tmp_path / "arch").iterdir()) == [f"{c}.jsonl" for c in ended]
    again = archive_ended(store, FolderTarget(tmp_path / "arch"), before=LATER)
    assert again.as_dict() == {
        "archived": [],
        "reused": [],
        "purged": [],
        "finished": [],
        "skipped": [],
    }
    store.close()


def test_nothing_newer_than_the_cut_is_archived(data: Path, tmp_path: Path) -> None:
    store = open_store(data)
    report = archive_ended(store, FolderTarget(tmp_path / "arch"), before=iso(1_000_000_000.0))
    assert report.purged == [] and len(store.course_ids()) == 5
    store.close()


POINTS = ["temporary-written", "renamed", "written", "verified", "purged"]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("nth", [1, 3])
def test_a_crash_at_any_point_loses_nothing_and_a_rerun_duplicates_nothing(
    data: Path, tmp_path: Path, point: str, nth: int
) -> None:
    store = open_store(data)
    before = histories(store)
    arch = tmp_path / "arch"
    seen = []

    def crash(at: str, course_id: str) -> None:
        if at == point:
            seen.append(at)
            if len(seen) == nth:
                raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        archive_ended(store, FolderTarget(arch), before=LATER, crash=crash)
    store.close()  # the process "dies": a new one opens the store
    store = open_store(data)
    for course_id, hashes in before.items():  # nothing lost: live, or archived and tombstoned
        live = [e.hash for e in store.load(course_id)]
        if live:
            assert live == hashes and store.tombstone(course_id) is None
        else:
            tomb = store.tombstone(course_id)
            assert tomb is not None and tomb.last_hash == hashes[-1]
            found = verify_archive((arch / f"{course_id}.jsonl").read_bytes())
            assert [e.hash for e in found.events] == hashes
    rerun = archive_ended(store, FolderTarget(arch), before=LATER)
    assert not rerun.skipped
    ended = {c for c in before if c not in store.course_ids()}
    assert len(ended) == 4
    files = sorted(p.name for p in arch.iterdir())
    assert files == sorted(f"{c}.jsonl" for c in ended)  # one archive each, no temporaries
    for c in ended:
        found = verify_archive((arch / f"{c}.jsonl").read_bytes())
        assert [e.hash for e in found.events] == before[c]
    assert [t.course_id for t in store.tombstones()] == sorted(ended)
    if point in ("written", "verified"):  # the archive was there, whole: reused, not rewritten
        assert len(rerun.reused) == 1
    store.close()


def test_a_course_redriven_while_it_is_archived_stays_live(data: Path, tmp_path: Path) -> None:
    rt = runtime(data)
    failed = next(h.course_id for h in rt.store.courses(status="failed"))

    def redrive_meanwhile(at: str, course_id: str) -> None:
        if at == "verified" and course_id == failed:
            operations.redrive(rt.store, rt.bridge, failed, operator="t", reason="again")

    arch = FolderTarget(tmp_path / "arch")
    report = archive_ended(rt.store, arch, before=LATER, crash=redrive_meanwhile)
    assert [s["course_id"] for s in report.skipped] == [failed]
    assert rt.store.tombstone(failed) is None and rt.store.head(failed) is not None
    rt.run_until_idle()
    assert rt.store.head(failed).status == "completed"  # type: ignore[union-attr]
    later = iso(rt.clock.now() + 86400)
    report = archive_ended(rt.store, arch, before=later)
    assert report.archived == [failed] and report.purged == [failed]
    found = verify_archive(arch.path(failed).read_bytes())
    assert found.status == "completed"  # the stale archive was replaced, not kept beside it
    assert sorted(p.name for p in arch.folder.iterdir()) == sorted(
        f"{t.course_id}.jsonl" for t in rt.store.tombstones()
    )
    rt.close()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COURSEGEN_STORE": "sqlite"}).invoke(main, list(args))
    return result.exit_code, result.output


def test_the_cli_archives_audits_archives_offline_and_replays_archived_courses(
    data: Path, tmp_path: Path
) -> None:
    store = open_store(data)
    completed = next(h.course_id for h in store.courses(status="completed"))
    exported = [json.loads(line) for line in _export(data, completed)]
    store.close()
    arch = tmp_path / "arch"
    code, out = cli("archive", "--older-than", "0s", "--to", str(arch), "--data", str(data))
    assert code == 0, out
    assert "4 archived, 0 archives reused, 4 purged, 0 kept" in out
    file = arch / f"{completed}.jsonl"
    code, out = cli("audit", "--archive", str(file), "--archive", file.as_uri(), "--shadow")
    assert code == 0, out
    assert out.count(f"{completed} verified, 47 events, completed") == 2
    assert [json.loads(line) for line in _export(data, completed)] == exported
    code, out = cli("replay", completed, "--verify", "--data", str(data))
    assert (code, out.strip()) == (0, f"{completed}: verified 47 events (archived)")
    code, out = cli("replay", completed, "--at", "4", "--data", str(data))
    assert code == 0 and json.loads(out)["tasks"]["prepare_video"]["status"] == "succeeded"
    code, out = cli("audit", "--data", str(data))
    assert code == 0 and "1 courses audited, 0 failed" in out


def _export(data: Path, course_id: str) -> list[str]:
    code, out = cli("replay", course_id, "--export", "jsonl", "--data", str(data))
    assert code == 0, out
    return out.splitlines()


def test_an_edited_archive_fails_offline_verification(data: Path, tmp_path: Path) -> None:
    store = open_store(data)
    archive_ended(store, FolderTarget(tmp_path / "arch"), before=LATER)
    store.close()
    file = sorted((tmp_path / "arch").iterdir())[0]
    lines = file.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '\\"attempt\\":1' in line)
    record = json.loads(lines[at])
    record["stored"] = record["stored"].replace('"attempt":1', '"attempt":2')
    record["data"]["attempt"] = 2  # the readable copy edited to match: only the hash can tell
    lines[at] = json.dumps(record)
    file.write_text("\n".join(lines) + "\n")
    code, out = cli("audit", "--archive", str(file))
    assert code == 2, out
    assert f"FAILED at version {record['version']}: stored bytes do not match" in out
    with pytest.raises(IntegrityError):
        verify_archive(b"".join(line.encode() + b"\n" for line in lines[:-1]))  # no trailer


def test_durations() -> None:
    assert parse_duration("30d") == 30 * 86400 and parse_duration("90m") == 5400
    with pytest.raises(ValueError):
        parse_duration("thirty days")
