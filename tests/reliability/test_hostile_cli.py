"""Hostile arguments to every ``coursegen`` command: a clear error, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from tests.reliability.conftest import REQUEST, make_world

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


# Bad values in the environment, a damaged store, arguments that contradict each other: each
# (args, env, fragment) must end in one clear line containing ``fragment``, exit non-zero, and
# show no traceback. {data}: a healthy store; {bad}: a folder whose events.db is not SQLite;
# {file}: a plain text file; {tmp}: an empty scratch folder.
NO_GOOGLE = {  # no credentials anywhere, and the metadata server asked on loopback only
    "COURSEGEN_STORE": "firestore",
    "GOOGLE_APPLICATION_CREDENTIALS": None,
    "FIRESTORE_EMULATOR_HOST": None,
    "CLOUDSDK_CONFIG": "{tmp}/gcloud",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "NO_GCE_CHECK": "True",
}
NOT_SQLITE = "is not a readable coursegen event store"
ROLLOUT = "COURSEGEN_ROLLOUT_PERCENT="
BAD_INPUT: list[tuple[str, list[str], dict[str, str | None], str]] = [
    ("status-corrupt-db", ["status", "--data", "{bad}"], {}, NOT_SQLITE),
    ("status-one-corrupt-db", ["status", "course0", "--data", "{bad}"], {}, NOT_SQLITE),
    ("audit-corrupt-db", ["audit", "--data", "{bad}"], {}, NOT_SQLITE),
    ("replay-corrupt-db", ["replay", "course0", "--data", "{bad}"], {}, NOT_SQLITE),
    ("stats-corrupt-db", ["stats", "--data", "{bad}"], {}, NOT_SQLITE),
    ("rollout-abc", ["status", "--data", "{data}"], {"COURSEGEN_ROLLOUT_PERCENT": "abc"}, ROLLOUT),
    ("rollout-150", ["status", "--data", "{data}"], {"COURSEGEN_ROLLOUT_PERCENT": "150"}, ROLLOUT),
    ("rollout-minus-5", ["work", "--data", "{data}"], {"COURSEGEN_ROLLOUT_PERCENT": "-5"}, ROLLOUT),
    (
        "rollout-run",
        ["run", "{file}", "--data", "{tmp}/run"],
        {"COURSEGEN_ROLLOUT_PERCENT": "abc"},
        "a whole number from 0 to 100",
    ),
    (
        "synchronous-fast",
        ["audit", "--data", "{data}"],
        {"COURSEGEN_SQLITE_SYNCHRONOUS": "fast"},
        "COURSEGEN_SQLITE_SYNCHRONOUS='fast' is not allowed: FULL, NORMAL or EXTRA",
    ),
    (
        "store-bogus",
        ["status", "--data", "{data}"],
        {"COURSEGEN_STORE": "bogus"},
        "COURSEGEN_STORE='bogus' is not allowed: memory, sqlite or firestore",
    ),
    (
        "store-memory",
        ["status", "--data", "{data}"],
        {"COURSEGEN_STORE": "memory"},
        "COURSEGEN_STORE=memory keeps nothing between commands",
    ),
    ("firestore-no-credentials", ["status"], NO_GOOGLE, "no Google credentials"),
    ("firestore-no-credentials-audit", ["audit"], NO_GOOGLE, "no Google credentials"),
    (
        "firestore-no-credentials-pause",
        ["pause", "c1", "--reason", "r"],
        NO_GOOGLE,
        "no Google credentials",
    ),
    (
        "stats-since-999999d",
        ["stats", "--since", "999999d", "--data", "{data}"],
        {},
        "reaches back before the year 1",
    ),
    (
        "replay-at-with-verify",
        ["replay", "course0", "--at", "1", "--verify", "--data", "{data}"],
        {},
        "cannot be combined with --verify or --export",
    ),
    (
        "replay-at-with-export",
        ["replay", "course0", "--at", "1", "--export", "jsonl", "--data", "{data}"],
        {},
        "cannot be combined with --verify or --export",
    ),
    ("work-data-typo", ["work", "--until-idle", "--data", "{data}/typo"], {}, "no event store"),
    (
        "run-not-a-video",
        ["run", "{file}", "--json", "--data", "{tmp}/run"],
        {},
        "plain.txt is not a media file",
    ),
]


@pytest.mark.parametrize(
    ("args", "env", "fragment"), [pytest.param(a, e, f, id=n) for n, a, e, f in BAD_INPUT]
)
def test_bad_input_ends_in_one_clear_line(
    tmp_path: Path, args: list[str], env: dict[str, str | None], fragment: str
) -> None:
    data, bad, scratch = tmp_path / "data", tmp_path / "bad", tmp_path / "scratch"
    for folder in (data, bad, scratch):
        folder.mkdir()
    world = make_world(data)
    before = world.fingerprint()
    (bad / "events.db").write_bytes(b"this is not a SQLite database, just some text\n" * 50)
    plain = tmp_path / "plain.txt"
    plain.write_text("not a video")
    names = {"data": data, "bad": bad, "file": plain, "tmp": scratch}
    argv = [a.format(**names) for a in args]
    environment = {"COURSEGEN_STORE": "sqlite", "USER": "tester"}
    environment.update({k: v.format(**names) if v else v for k, v in env.items()})

    result = CliRunner().invoke(main, argv, env=environment, catch_exceptions=True)

    assert result.exit_code not in (0, None), result.output[-500:]
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output[-800:]
    assert "source.bin" not in result.output  # the user's file, not the scratch copy
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) <= 1
    assert world.fingerprint() == before
    assert not (data / "typo").exists()
    world.store.close()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = {k: v.format(tmp=tmp_path) if v else v for k, v in NO_GOOGLE.items()}
    quiet = CliRunner().invoke(main, ["status"], env=env)
    loud = CliRunner().invoke(main, ["--debug", "status"], env=env)
    assert quiet.exit_code == 2 and isinstance(quiet.exception, SystemExit)
    assert loud.exit_code == 1
    assert type(loud.exception).__name__ == "DefaultCredentialsError"


def test_course_ids_are_never_cut_in_a_narrow_or_piped_table(tmp_path: Path) -> None:
    world = make_world(tmp_path, courses=0)
    ids = [world.bridge.ingest({**REQUEST, "title": f"T{i}"}, message_id=f"m{i}") for i in range(3)]
    world.store.close()
    for columns in ("40", "80"):
        result = CliRunner().invoke(
            main, ["status", "--data", str(tmp_path)], env={"COLUMNS": columns}
        )
        assert result.exit_code == 0, result.output
        assert all(course in result.output for course in ids), result.output
        assert "…" not in result.output
        events = CliRunner().invoke(
            main, ["replay", ids[0], "--data", str(tmp_path)], env={"COLUMNS": columns}
        )
        assert "…" not in events.output and "CourseRequested" in events.output
