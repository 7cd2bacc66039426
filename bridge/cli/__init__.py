"""The ``coursegen`` command line: run, status, replay, audit, simulate, bench.

Every option that has a setting mirrors its environment variable (``--data`` is
``COURSEGEN_DATA_DIR``); ``coursegen COMMAND --help`` documents each command. The settings
are checked once, before any command runs; an error ends a command with one line and a
non-zero exit code (``bridge.cli.errors``), its traceback only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bridge.cli.common import data_option, emit_json, open_store, text_table
from bridge.cli.errors import Coursegen
from bridge.settings import Settings
from statemachine.lifecycle import CourseStatus

if TYPE_CHECKING:
    from bridge.ops.views import CourseRow


@click.group(cls=Coursegen, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="coursegen")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
def main(debug: bool) -> None:
    """Turn a lecture video into a structured course; audit every step it took."""
    from bridge.settings import Settings

    Settings.from_env()  # every setting checked once, naming the first one not allowed


@main.command()
@click.argument("video")
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
    "--tenant",
    help="The tenant the course counts against (COURSEGEN_TENANT_LIMITS; default: the "
    "default tenant).",
)
@click.option(
    "--provider",
    type=click.Choice(["offline", "gemini", "openai", "local"]),
    envvar="COURSEGEN_PROVIDER",
    help="AI provider for every AI step "
    "[env COURSEGEN_PROVIDER; default from pipeline.json: offline].",
)
@data_option
@click.option(
    "--paused-timeout",
    "paused_timeout",
    type=click.FloatRange(min=0),
    default=900,
    show_default=True,
    help="Seconds to wait on a course an operator paused before giving up (exit 1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(
    video: str,
    title: str | None,
    out: Path,
    language: str,
    tenant: str | None,
    provider: str | None,
    data: Path,
    paused_timeout: float,
    as_json: bool,
) -> None:
    """Run VIDEO through the whole pipeline on this machine and write the course.

    While it runs, ``coursegen pause|resume|cancel|redrive`` from another shell reach it (the
    run's reconciler loop picks up what they record).

    VIDEO is a local file or a gs://BUCKET/OBJECT URI whose bucket COURSEGEN_LOCAL_BUCKETS
    maps to a folder here (``lectures=/srv/uploads``), as the cloud reads Cloud Storage."""
    from bridge.cli.run import run_video, source_of

    try:
        source = source_of(video, Settings.from_env())
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="VIDEO") from None
    from bridge.core import InvalidRequest

    try:
        summary = run_video(
            source,
            title=title,
            out=out,
            data=data,
            language=language,
            tenant=tenant,
            provider=provider,
            live=not as_json,
            paused_timeout_s=paused_timeout,
        )
    except InvalidRequest as err:  # nothing was recorded: the request never became a course
        raise click.UsageError(str(err)) from None
    if as_json:
        emit_json(summary)
    else:
        _print_run(summary)
    if summary["status"] != CourseStatus.COMPLETED:
        sys.exit(1)


def _print_run(summary: dict[str, Any]) -> None:
    """The human summary: where the course is, or which step failed and why."""
    click.echo(f"course {summary['course_id']}: {summary['status']} in {summary['wall_s']} s")
    if summary.get("stopped"):
        course, data = summary["course_id"], summary["data"]
        resume = (
            f"coursegen resume {course} --reason ..., then "
            if summary["status"] == CourseStatus.PAUSED
            else ""
        )
        click.echo(
            f"  stopped waiting: the course is {summary['status']}, {summary['stopped']};"
            f" it stays in {data}: {resume}coursegen work --data {data}",
            err=True,
        )
    elif summary["status"] == CourseStatus.COMPLETED:
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
        rows = courses_table(store, now=time.time())
        emit_json(rows) if as_json else _print_table([_listed(r) for r in rows])
        return
    view = course_status(store, course_id)
    if view is None:
        raise click.ClickException(f"no course {course_id!r}")
    if as_json:
        emit_json(view)
        return
    click.echo(
        f"{view['course_id']}  {view['status']}  {view['title']!r}  variant "
        f"{view['variant']}  version {view['version']}  pipeline {view['pipeline_version']}"
    )
    if view["failure"]:
        click.echo(f"failure: {view['failure']['reason']}")
    if view["tenant"] != "default":
        click.echo(f"tenant: {view['tenant']}")
    q = view["queued"]
    if q:
        click.echo(
            f"queued: position {q['position']} in tenant {view['tenant']}'s line since "
            f"{q['since']}: {q['reason']}"
        )
    if view["held"]:
        first = view["held"][0]
        names = ", ".join(h["task"] for h in view["held"])
        click.echo(f"held until {first['until']}: {names}: {first['reason']}")
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

    if at is not None and (check or export):
        raise click.UsageError(
            "--at shows one state: it cannot be combined with --verify or --export"
        )
    store = open_store(data)
    archived = _archived(store, course_id)
    if archived is not None and check:
        summary = {"ok": True, "course_id": course_id, "events": len(archived), "archived": True}
        emit_json(summary) if as_json else click.echo(
            f"{course_id}: verified {len(archived)} events (archived)"
        )
        return
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
    events = archived if archived is not None else store.load(course_id)
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


def _archived(store: Any, course_id: str) -> Any:
    """The verified history of an archived course (its tombstone names the archive), or None."""
    from bridge.ops.archive import verify_archive
    from bridge.ops.archive_targets import read_location
    from statemachine.errors import IntegrityError

    tomb = store.tombstone(course_id)
    if tomb is None:
        return None
    try:
        found = verify_archive(read_location(tomb.location))
    except (OSError, IntegrityError) as err:
        raise click.ClickException(f"{course_id} is archived at {tomb.location}: {err}") from None
    if found.course_id != course_id or found.final_hash != tomb.last_hash:
        raise click.ClickException(
            f"{course_id}: the archive at {tomb.location} is not the one its tombstone names"
        )
    return found.events


@main.command()
@data_option
@click.option(
    "--shadow",
    is_flag=True,
    help="Re-fold every history with this code: name each course whose state or next "
    "commands differ from what was recorded, at the first differing version.",
)
@click.option(
    "--archive",
    "archives",
    multiple=True,
    help="Verify this archive file (or gs:// object) offline instead of the store; repeatable.",
)
@click.option("--json", "as_json", is_flag=True)
def audit(data: Path, shadow: bool, archives: tuple[str, ...], as_json: bool) -> None:
    """Verify every course's history (or archives, offline); exit 2 if any fails."""
    from bridge.ops.replay import audit_all

    if archives:
        _audit_archives(archives, shadow, as_json)
        return
    if shadow:
        _shadow(open_store(data), as_json)
        return
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


def _audit_archives(archives: tuple[str, ...], shadow: bool, as_json: bool) -> None:
    from bridge.ops.archive import verify_archive
    from bridge.ops.archive_targets import read_location
    from bridge.ops.shadow import shadow as shadow_one
    from statemachine.errors import IntegrityError

    results: list[dict[str, Any]] = []
    for where in archives:
        try:
            found = verify_archive(read_location(where))
        except FileNotFoundError:
            raise click.ClickException(f"no archive at {where}") from None
        except IntegrityError as err:
            results.append(
                {
                    "archive": where,
                    "ok": False,
                    "course_id": err.course_id,
                    "first_bad_version": err.version,
                    "problem": err.problem,
                }
            )
            continue
        result: dict[str, Any] = {
            "archive": where,
            "ok": True,
            "course_id": found.course_id,
            "events": len(found.events),
            "final_hash": found.final_hash,
            "status": found.status,
        }
        if shadow:
            d = shadow_one(found.course_id, found.events, head=found.head.snapshot)
            result["shadow"] = d.as_dict() if d is not None else None
            result["ok"] = d is None
        results.append(result)
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r.get("shadow"):
                part = r["shadow"]
                click.echo(
                    f"{r['archive']}: {r['course_id']} differs at version "
                    f"{part['version']} ({part['kind']}): {part['detail']}"
                )
            elif r["ok"]:
                click.echo(
                    f"{r['archive']}: {r['course_id']} verified, {r['events']} events, "
                    f"{r['status']}, final hash {r['final_hash'][:16]}"
                )
            else:
                click.echo(
                    f"{r['archive']}: FAILED at version {r['first_bad_version']}: {r['problem']}"
                )
    sys.exit(0 if all(r["ok"] for r in results) else 2)


def _shadow(store: Any, as_json: bool) -> None:
    from bridge.ops.shadow import shadow_store

    report = shadow_store(store)
    if as_json:
        emit_json(report.as_dict())
    else:
        for d in report.divergences:
            click.echo(f"{d.course_id}: differs at version {d.version} ({d.kind}): {d.detail}")
        click.echo(
            f"{report.courses} courses shadow-replayed ({report.events} events), "
            f"{len(report.divergences)} differ"
        )
    sys.exit(2 if report.divergences else 0)


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
@click.option(
    "--mixed",
    is_flag=True,
    help="Instead: the fair-shares workload (one big tenant, many small ones, no faults); "
    "time to start per tenant, the small tenants' p95 against an empty system's.",
)
@click.option("--big-courses", default=500, show_default=True, type=click.IntRange(min=0))
@click.option("--small-tenants", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--small-courses", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--tenant-limits",
    default=None,
    help="With --mixed: COURSEGEN_TENANT_LIMITS for the run (JSON) "
    '[default: {"default": {"maxActive": 5}, "maxActiveTotal": 60}].',
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
    mixed: bool,
    big_courses: int,
    small_tenants: int,
    small_courses: int,
    tenant_limits: str | None,
    as_json: bool,
) -> None:
    """Run N courses through the real runtime with injected faults on a virtual clock."""
    import tempfile

    if mixed:
        _simulate_mixed(big_courses, small_tenants, small_courses, tenant_limits, as_json)
        return

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


def _simulate_mixed(
    big: int, small_tenants: int, small_courses: int, raw_limits: str | None, as_json: bool
) -> None:
    import tempfile

    from bridge.tenancy import TenantLimits
    from bridge.tooling.fairness import simulate_mixed

    limits = None
    if raw_limits is not None:
        try:
            TenantLimits.parse(raw_limits, "--tenant-limits")
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
        limits = json.loads(raw_limits)
    with tempfile.TemporaryDirectory(prefix="coursegen-mixed-") as tmp:
        report = simulate_mixed(
            Path(tmp),
            big=big,
            small_tenants=small_tenants,
            small_courses=small_courses,
            limits=limits,
        )
    if as_json:
        emit_json(report)
    else:
        rows = [{"tenant": t, **v} for t, v in report["time_to_start"].items()]
        _print_table(rows)
        s = report["small_tenants"]
        click.echo(
            f"small tenants p95 {s['mixed_p95_s']} s mixed, {s['empty_system_p95_s']} s on an "
            f"empty system: {s['p95_ratio']}x (target <= {s['target_ratio']}x)"
        )
        if "first_come" in report:
            click.echo(
                f"first come, first served: small p95 {report['first_come']['small_p95_s']} s"
            )
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
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Delivery threads, shared out among the processes (at least one each).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=64),
    default=None,
    help="Processes sharing the store, each running its share of the courses, as "
    "`coursegen work --processes` does [default: the usable cores].",
)
@click.option(
    "--synchronous", type=click.Choice(["FULL", "NORMAL"]), default="FULL", show_default=True
)
@click.option("--json", "as_json", is_flag=True)
def bench_pipeline(
    courses: int, workers: int, processes: int | None, synchronous: str, as_json: bool
) -> None:
    """Courses per second through the embedded runtime with no-op steps on the full DAG."""
    from bridge.runtime.processes import usable_cores
    from bridge.tooling.bench import bench_pipeline as run_bench

    result = run_bench(
        courses=courses,
        workers=workers,
        synchronous=synchronous,
        processes=processes or usable_cores(),
    )
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


_LISTED = ("course_id", "status", "title", "variant", "progress", "updated_at", "cost_usd")


def _listed(row: CourseRow) -> dict[str, Any]:
    """The columns ``coursegen status`` prints for each course (``--json`` has them all)."""
    cells: dict[str, Any] = dict(row)
    return {k: cells[k] for k in _LISTED}


def _print_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain aligned columns: ids are never cut, piped or in a narrow terminal."""
    click.echo(text_table(rows).rstrip("\n") if rows else "(nothing)")


def _register_extensions() -> None:
    """Commands that live beside their code (ops, dashboard, queues, export, cloud-local, eval,
    model)."""
    from bridge.cli import cloud_local
    from bridge.cli import dead_letters as dead_letters_cli
    from bridge.cli import eval as eval_cli
    from bridge.cli import model as model_cli
    from bridge.cli import operator as ops_cli
    from bridge.cli import queues as queues_cli
    from bridge.cli import serve as serve_cli
    from bridge.cli.export import export
    from bridge.cli.retention import archive

    ops_cli.register(main)
    serve_cli.register(main)
    cloud_local.register(main)
    queues_cli.register(main)
    dead_letters_cli.register(main)
    eval_cli.register(main)
    model_cli.register(main)
    main.add_command(export)
    main.add_command(archive)


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    main()
