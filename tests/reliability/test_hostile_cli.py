"""Hostile arguments to every ``coursegen`` command: a clear error, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from tests.reliability.conftest import make_world

HUGE = "c" * 100_000
# {data}: the folder with two courses, course0 and course1; {file}: a plain file.
CASES: list[tuple[str, list[str]]] = [
    ("status-dotdot", ["status", "../../etc/passwd", "--data", "{data}"]),
    ("status-huge-id", ["status", HUGE, "--data", "{data}"]),
    ("status-nul", ["status", "course0\x00", "--data", "{data}"]),
    ("status-no-store", ["status", "--data", "{data}/nothing-here"]),
    ("status-data-is-a-file", ["status", "--data", "{file}"]),
    ("replay-dotdot", ["replay", "../course0", "--data", "{data}"]),
    ("replay-at-negative", ["replay", "course0", "--at", "-1", "--data", "{data}"]),
    ("replay-at-past-end", ["replay", "course0", "--at", "99999999", "--data", "{data}"]),
    ("replay-at-not-int", ["replay", "course0", "--at", "1;drop", "--data", "{data}"]),
    ("replay-at-huge", ["replay", "course0", "--at", "9" * 400, "--data", "{data}"]),
    ("replay-export-unknown", ["replay", "course0", "--export", "xml", "--data", "{data}"]),
    ("replay-verify-unknown", ["replay", "nosuch", "--verify", "--data", "{data}"]),
    ("audit-no-store", ["audit", "--data", "{data}/missing"]),
    ("simulate-rate-over-one", ["simulate", "--fail-rate", "2"]),
    ("simulate-rate-nan", ["simulate", "--fail-rate", "nan"]),
    ("simulate-courses-negative", ["simulate", "--courses", "-5"]),
    ("bench-store-negative", ["bench", "store", "--courses", "-1", "--write-courses", "-1"]),
    ("bench-pipeline-zero-workers", ["bench", "pipeline", "--courses", "1", "--workers", "0"]),
    ("bench-media-zero-minutes", ["bench", "media", "--minutes", "0"]),
    ("run-a-folder", ["run", "{data}"]),
    ("run-missing", ["run", "{data}/none.mp4"]),
    ("unknown-command", ["teleport"]),
    ("cancel-dotdot", ["cancel", "../course0", "--reason", "r", "--data", "{data}"]),
    ("cancel-no-reason", ["cancel", "course0", "--data", "{data}"]),
    ("cancel-empty-reason", ["cancel", "course0", "--reason", "", "--data", "{data}"]),
    ("cancel-huge-reason", ["cancel", "course0", "--reason", "r" * 2_000_000, "--data", "{data}"]),
    ("pause-unknown-course", ["pause", "nosuch", "--reason", "r", "--data", "{data}"]),
    ("resume-running-course", ["resume", "course0", "--reason", "r", "--data", "{data}"]),
    (
        "redrive-bad-step",
        ["redrive", "course0", "--reason", "r", "--step", "../x", "--data", "{data}"],
    ),
    ("stats-no-store", ["stats", "--data", "{data}/missing"]),
    ("work-negative-workers", ["work", "--workers", "-1", "--until-idle", "--data", "{data}"]),
]

OPERATOR_COMMANDS = {"cancel", "pause", "resume", "redrive", "work", "stats"}


@pytest.mark.parametrize("args", [pytest.param(a, id=n) for n, a in CASES])
def test_hostile_arguments_fail_cleanly_and_write_nothing(tmp_path: Path, args: list[str]) -> None:
    if args[0] in OPERATOR_COMMANDS and args[0] not in main.commands:
        pytest.skip(f"coursegen {args[0]} does not exist yet")
    data = tmp_path / "data"
    data.mkdir()
    world = make_world(data)
    before = world.fingerprint()
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    argv = [a.format(data=data, file=plain) for a in args]

    result = CliRunner().invoke(main, argv, catch_exceptions=True)

    assert result.exit_code not in (0, None), result.output[-500:]
    # a clear message, not a traceback: click exits with SystemExit on purpose
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.output.strip(), "an error must say what was wrong"
    assert "Traceback" not in result.output
    assert world.fingerprint() == before
    assert not (data / "missing").exists() and not (data / "nothing-here").exists()
    world.store.close()
