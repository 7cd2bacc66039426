"""The ``coursegen`` command line: run, status, replay, audit, simulate, bench.

Every option that has a setting mirrors its environment variable (``--data`` is
``COURSEGEN_DATA_DIR``); ``coursegen COMMAND --help`` documents each command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bridge.cli.common import data_option, emit_json, open_store


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="coursegen")
def main() -> None:
    """Turn a lecture video into a structured course; audit every step it took."""


@main.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Course title (default: from the file name).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default="course-out",
    show_default=True,
    help="Where course.json, course.html and frames are written.",
)
@click.option("--language", default="en", show_default=True)
@click.option(
    "--provider",
    type=click.Choice(["offline", "gemini", "openai"]),
    envvar="COURSEGEN_PROVIDER",
    help="AI provider for every AI step "
    "[env COURSEGEN_PROVIDER; default from pipeline.json: offline].",
)
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(
    video: Path,
    title: str | None,
    out: Path,
    language: str,
    provider: str | None,
    data: Path,
    as_json: bool,
) -> None:
    """Run VIDEO through the whole pipeline on this machine and write the course."""
    from bridge.cli.run import run_video

    summary = run_video(
        video,
        title=title,
        out=out,
        data=data,
        language=language,
        provider=provider,
        live=not as_json,
    )
    if as_json:
        emit_json(summary)
    else:
        _print_run(summary)
    if summary["status"] != "completed":
        sys.exit(1)


def _print_run(summary: dict[str, Any]) -> None:
    """The human summary: where the course is, or which step failed and why."""
    click.echo(f"course {summary['course_id']}: {summary['status']} in {summary['wall_s']} s")
    if summary["status"] == "completed":
        click.echo(f"  {summary['lessons']} lessons, {summary['questions']} questions")
        for name, path in summary.get("files", {}).items():
            click.echo(f"  {name}: {path}")
    else:
        failure = summary.get("failure") or {}
        click.echo(
            f"  failed in step {failure.get('task', '?')}: {failure.get('reason', '?')}", err=True
        )
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in summary["step_seconds"].items())
    click.echo(f"  step time: {steps}")
    click.echo(
        f"  audit it: coursegen replay {summary['course_id']} --verify --data {summary['data']}"
    )


@main.command()
@click.argument("course_id", required=False)
@data_option
@click.option("--json", "as_json", is_flag=True)
def status(course_id: str | None, data: Path, as_json: bool) -> None:
    """List courses, or show one course's tasks, attempts, durations and cost."""
    from bridge.ops.views import course_status, courses_table

    store = open_store(data)
    if course_id is None:
        rows = courses_table(store)
        emit_json(rows) if as_json else _print_table(rows)
        return
    view = course_status(store, course_id)
    if view is None:
        raise click.ClickException(f"no course {course_id!r}")
    if as_json:
        emit_json(view)
        return
    click.echo(
        f"{view['course_id']}  {view['status']}  {view['title']!r}  variant "
        f"{view['variant']}  version {view['version']}"
    )
    if view.get("failure"):
        click.echo(f"failure: {view['failure']['reason']}")
    _print_table(view["tasks"])
    click.echo(f"total cost: ${view['cost_usd']:.4f}")


@main.command()
@click.argument("course_id")
@click.option("--at", "at", type=int, help="Show the state right after this version.")
@click.option("--verify", "check", is_flag=True, help="Check the hash chain and the head.")
@click.option(
    "--export",
    "export",
    type=click.Choice(["jsonl"]),
    help="Write the whole history to stdout for archiving.",
)
@data_option
@click.option("--json", "as_json", is_flag=True)
def replay(
    course_id: str, at: int | None, check: bool, export: str | None, data: Path, as_json: bool
) -> None:
    """Replay a course's history: timeline, state at any version, verification."""
    from bridge.ops import replay as rp

    store = open_store(data)
    if check:
        verdict = rp.check(store, course_id)
        if verdict.ok and verdict.events == 0 and store.head(course_id) is None:
            raise click.ClickException(f"no course {course_id!r}")  # nothing is not verified
        emit_json(verdict.as_dict()) if as_json else click.echo(
            f"{course_id}: verified {verdict.events} events"
            if verdict.ok
            else f"{course_id}: FAILED at version {verdict.first_bad_version}: {verdict.problem}"
        )
        sys.exit(0 if verdict.ok else 2)
    events = store.load(course_id)
    if not events:
        raise click.ClickException(f"no course {course_id!r}")
    if export:
        rp.export_jsonl(events, sys.stdout)
        return
    if at is not None:
        if not 0 <= at <= events[-1].version:
            raise click.ClickException(f"--at must be between 0 and {events[-1].version}")
        emit_json(rp.state_json(events, course_id, at))
        return
    rows = [r.as_dict() for r in rp.timeline(events)]
    emit_json(rows) if as_json else _print_table(rows)


@main.command()
@data_option
@click.option("--json", "as_json", is_flag=True)
def audit(data: Path, as_json: bool) -> None:
    """Verify every course's history; exit 2 if any fails."""
    from bridge.ops.replay import audit_all

    bad = total = 0
    failures = []
    for verdict in audit_all(open_store(data)):
        total += 1
        if not verdict.ok:
            bad += 1
            failures.append(verdict.as_dict())
            if not as_json:
                click.echo(
                    f"{verdict.course_id}: FAILED at version "
                    f"{verdict.first_bad_version}: {verdict.problem}"
                )
    if as_json:
        emit_json({"courses": total, "failed": bad, "failures": failures})
    else:
        click.echo(f"{total} courses audited, {bad} failed")
    sys.exit(2 if bad else 0)


@main.command()
@click.option("--courses", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=7, show_default=True)
@click.option("--fail-rate", default=0.2, show_default=True, help="Transient step failures.")
@click.option("--permanent-rate", default=0.0, show_default=True, help="Permanent failures.")
@click.option("--duplicate-rate", default=0.1, show_default=True, help="Duplicate deliveries.")
@click.option("--drop-notify-rate", default=0.05, show_default=True, help="Lost notifications.")
@click.option("--slow-rate", default=0.02, show_default=True, help="Dispatch-deadline overruns.")
@click.option(
    "--store", type=click.Choice(["memory", "sqlite"]), default="memory", show_default=True
)
@click.option("--json", "as_json", is_flag=True)
def simulate(
    courses: int,
    seed: int,
    fail_rate: float,
    permanent_rate: float,
    duplicate_rate: float,
    drop_notify_rate: float,
    slow_rate: float,
    store: str,
    as_json: bool,
) -> None:
    """Run N courses through the real runtime with injected faults on a virtual clock."""
    import tempfile

    from bridge.tooling.simulate import Faults
    from bridge.tooling.simulate import simulate as run_simulation

    for name, rate in {
        "fail-rate": fail_rate,
        "permanent-rate": permanent_rate,
        "duplicate-rate": duplicate_rate,
        "drop-notify-rate": drop_notify_rate,
        "slow-rate": slow_rate,
    }.items():
        if not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"--{name} must be between 0 and 1")
    faults = Faults(seed, fail_rate, permanent_rate, duplicate_rate, drop_notify_rate, slow_rate)
    with tempfile.TemporaryDirectory(prefix="coursegen-sim-") as tmp:
        report = run_simulation(courses, faults, data_dir=Path(tmp), store=store)
    if as_json:
        emit_json(report)
    else:
        for name, verdict in report["invariants"].items():
            click.echo(f"{'ok  ' if verdict == 'held' else 'FAIL'} {name}")
        click.echo(json.dumps(report["statuses"]))
        click.echo(json.dumps(report["counts"]))
    sys.exit(0 if report["ok"] else 1)


@main.group()
def bench() -> None:
    """Benchmarks (throughput and latency; not timed tests)."""


@bench.command("store")
@click.option(
    "--courses",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Courses to replay.",
)
@click.option(
    "--write-courses",
    default=300,
    show_default=True,
    type=click.IntRange(min=1),
    help="Courses to append.",
)
@click.option(
    "--synchronous", type=click.Choice(["FULL", "NORMAL"]), default="FULL", show_default=True
)
@click.option("--json", "as_json", is_flag=True)
def benchopen_store(courses: int, write_courses: int, synchronous: str, as_json: bool) -> None:
    """Durable appends per second and p99; replay of COURSES histories with verification."""
    from bridge.tooling.bench import bench_store as run_bench

    result = run_bench(courses=courses, write_courses=write_courses, synchronous=synchronous)
    emit_json(result) if as_json else _print_table([result])


@bench.command("pipeline")
@click.option("--courses", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--synchronous", type=click.Choice(["FULL", "NORMAL"]), default="FULL", show_default=True
)
@click.option("--json", "as_json", is_flag=True)
def bench_pipeline(courses: int, workers: int, synchronous: str, as_json: bool) -> None:
    """Courses per second through the embedded runtime with no-op steps on the full DAG."""
    from bridge.tooling.bench import bench_pipeline as run_bench

    result = run_bench(courses=courses, workers=workers, synchronous=synchronous)
    emit_json(result) if as_json else _print_table([result])


@bench.command("media")
@click.option(
    "--minutes",
    default=10,
    show_default=True,
    type=click.IntRange(min=1, max=600),
    help="Length of the generated video.",
)
@click.option("--json", "as_json", is_flag=True)
def bench_media(minutes: int, as_json: bool) -> None:
    """extract_frames against a decode-only pass; the offline pipeline on the sample."""
    from bridge.tooling.bench_media import bench_media as run_bench

    result = run_bench(minutes=minutes)
    emit_json(result) if as_json else _print_table([result])


@bench.command("long")
@click.option(
    "--minutes",
    default="10,30,60,120",
    show_default=True,
    help="Comma-separated lengths of the generated lectures.",
)
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COURSEGEN_BENCH_CACHE",
    help="Where generated lectures are kept [env COURSEGEN_BENCH_CACHE; default: a temp dir].",
)
@click.option("--json", "as_json", is_flag=True)
def bench_long(minutes: str, workers: int, cache: Path | None, as_json: bool) -> None:
    """Generated lectures of each length through the whole offline pipeline: wall time,
    per-step time, the longest task, peak RSS, and wall(120) / wall(30)."""
    from bridge.tooling.bench_long import bench_long as run_bench

    try:
        lengths = [float(m) for m in minutes.split(",") if m.strip()]
    except ValueError:
        raise click.BadParameter("minutes must be numbers, e.g. 10,30,60") from None
    result = run_bench(lengths, workers=workers, cache=cache)
    if as_json:
        emit_json(result)
    else:
        rows = [
            {"minutes": m, **{k: r[k] for k in ("status", "wall_s", "cpu_s", "peak_rss_mb")},
             "longest_task": r["longest_task"]}
            for m, r in result["runs"].items()
        ]  # fmt: skip
        _print_table(rows)


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        click.echo("(nothing)")
        return
    table = Table(show_lines=False)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)


def _register_extensions() -> None:
    """Commands that live beside their code: operations, the dashboard, export."""
    from bridge.cli import operator as ops_cli
    from bridge.cli import serve as serve_cli
    from bridge.cli.export import export

    ops_cli.register(main)
    serve_cli.register(main)
    main.add_command(export)


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    main()
