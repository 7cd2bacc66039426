"""Where a delivery's time goes in ``coursegen bench pipeline``: py-spy samples split by stage.

    python scripts/profile_pipeline.py record --out /tmp/prof [--courses 300]
    python scripts/profile_pipeline.py report /tmp/prof [--deliveries 4500]

``record`` runs the benchmark three times under py-spy (which must be installed): ``wall``
samples every thread, idle or not (``--idle``: where the wall time goes, waits included),
``gil`` only the thread holding the GIL (Python CPU), and a flame graph of ``wall``
(``wall.svg``). ``report`` reads the raw (collapsed) stacks and charges each sample to the
stage of the innermost frame that a rule below names, then prints per-delivery milliseconds
of each stage as a Markdown table. Sampling slows the run, so the absolute figures are
larger than the benchmark's own; the split is what the table is for.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250  # samples a second

# (stage, pattern on "function (file:line)"), innermost matching frame wins; first rule first.
RULES: list[tuple[str, str]] = [
    ("fsync wait", r"_fdatasync|_sync_directory|fdatasync"),
    ("SQLite write lock wait", r"SqliteStore\._writing \(statemachine/store/sqlite\.py:\d+\)$"),
    ("HTTP/HMAC (headers, token)", r"handlers/auth\.py|^sign |HmacVerifier|_trace|_attempt "),
    ("payload validation", r"schemas/__init__\.py|jsonschema|_parse |_check_payload"),
    ("canonical JSON + hashing", r"envelope\.py|_dumps |json/encoder|json/__init__|task_name"),
    ("SQLite", r"statemachine/store/sqlite\.py|sqlite3"),
    ("load + fold", r"statemachine/state\.py|reducer\.py|_head |_loads|task_rows\.py"),
    ("decide", r"decide\.py|Bridge\.after|Bridge\._events|commands\.py|scheduled_view"),
    ("queue (local dispatcher)", r"LocalDispatcher\.(dispatch|_pick|_retry|_deliver)|_Bucket\."),
    ("ingest", r"Bridge\.ingest|Bridge\._ingest"),
]
_COMPILED = [(stage, re.compile(p)) for stage, p in RULES]


IDLE = "idle (a worker or the start recorder, nothing due)"
HANDOFF = "thread hand-offs (locks, conditions)"
_WAITS = ("Condition.", "Event.", "Semaphore.", "_RLock.")


def stage_of(frames: list[str]) -> str:
    python = [f for f in frames if not f.startswith(_WAITS)]
    if frames and frames[-1].startswith(_WAITS) and python:
        # a wait is charged to what waits: a sync (its own or another thread's), idleness
        if python[-1].startswith("WalSync."):
            return "fsync wait"
        idle = python[-1].startswith(("Driven._work", "StartRecorder._run"))
        return IDLE if idle else HANDOFF
    for frame in reversed(frames):
        for stage, pattern in _COMPILED:
            if pattern.search(frame):
                return stage
    return "other (endpoint, bridge, step)"


def split(path: Path, *, workers_only: bool = True) -> Counter[str]:
    """Samples per stage in one raw py-spy file (only the delivering threads by default)."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if workers_only and "dispatch-" not in frames[0] and "starts" not in frames[0]:
            continue
        counts[stage_of(frames[1:])] += int(n)
    return counts


def report(folder: Path, deliveries: int) -> str:
    wall, gil = split(folder / "wall.txt"), split(folder / "gil.txt")
    stages = [IDLE, HANDOFF] + [s for s, _ in RULES] + ["other (endpoint, bridge, step)"]
    per = 1000.0 / RATE / deliveries  # ms per delivery for one sample
    lines = [
        "| stage | wall ms / delivery (all worker threads) | GIL held ms / delivery |",
        "|---|---|---|",
    ]
    for stage in stages:
        lines.append(f"| {stage} | {wall[stage] * per:.3f} | {gil[stage] * per:.3f} |")
    lines.append(f"| **total** | {sum(wall.values()) * per:.3f} | {sum(gil.values()) * per:.3f} |")
    return "\n".join(lines)


def record(out: Path, courses: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    bench = [
        sys.executable,
        "-c",
        "import sys; from bridge.cli import main; sys.argv[0] = 'coursegen'; main()",
        "bench",
        "pipeline",
        "--courses",
        str(courses),
        "--json",
    ]
    runs = [
        ("wall.svg", ["-f", "flamegraph", "--idle"]),
        ("wall.txt", ["-f", "raw", "--idle"]),
        ("gil.txt", ["-f", "raw", "--gil"]),
    ]
    for name, flags in runs:
        spy = ["py-spy", "record", "-r", str(RATE), "--threads", *flags, "-o", str(out / name)]
        subprocess.run([*spy, "--", *bench], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--courses", type=int, default=300)
    rep = sub.add_parser("report")
    rep.add_argument("folder", type=Path)
    rep.add_argument("--deliveries", type=int, default=4500, help="task deliveries in the run")
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.out, args.courses)
    else:
        print(report(args.folder, args.deliveries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
