"""Operator commands: cancel, pause, resume, redrive, migrate, work, stats, rebuild-projections."""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from bridge.settings import Settings

if TYPE_CHECKING:
    from bridge.ops import operations

REASON_HELP = "Why (required; recorded in the course's history)."


def register(main: click.Group) -> None:
    """Add the operator commands to ``coursegen``."""
    from bridge.cli.common import data_option

    def operation(name: str, doc: str, extra: str | None = None) -> None:
        @click.argument("course_id")
        @click.option("--reason", required=True, help=REASON_HELP)
        @click.option(
            "--operator",
            envvar="USER",
            default=None,
            help="Who acts: recorded as actor operator:NAME [env USER].",
        )
        @data_option
        @click.option("--json", "as_json", is_flag=True)
        def command(
            course_id: str,
            reason: str,
            operator: str | None,
            data: Path,
            as_json: bool,
            step: str | None = None,
            at: str | None = None,
        ) -> None:
            _operate(name, course_id, reason, operator, data, as_json, step, at)

        command.__doc__ = doc
        if extra == "step":
            command = click.option("--step", help="Only the tasks of this step.")(command)
        if extra == "at":
            command = click.option(
                "--at",
                metavar="TIME",
                help="Hold what is due until TIME (ISO 8601, e.g. 2026-01-31T22:00Z; no offset:"
                " UTC): it is scheduled on its queue for then.",
            )(command)
        main.command(name)(command)

    operation(
        "cancel",
        "Cancel COURSE_ID: its queued and running tasks become no-ops when they arrive.",
    )
    operation("pause", "Pause COURSE_ID: no new task is scheduled until it is resumed.")
    operation(
        "resume", "Resume a paused COURSE_ID and schedule what is due (--at: for then).", "at"
    )
    operation(
        "redrive",
        "Run the failed and exhausted tasks of COURSE_ID again, as a new generation; the "
        "course continues where it stopped, and succeeded steps are not run again.",
        "step",
    )
    main.command("migrate")(data_option(_migrate_command()))
    main.command("work")(data_option(_work_command()))
    main.command("stats")(data_option(_stats_command()))
    main.command("rebuild-projections")(data_option(_rebuild_command()))


def _operator(name: str | None) -> str:
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise click.UsageError("name the operator with --operator (or set USER)") from None


def _operate(
    name: str,
    course_id: str,
    reason: str,
    operator: str | None,
    data: Path,
    as_json: bool,
    step: str | None,
    at: str | None = None,
) -> None:
    from bridge.ops import operations

    store, bridge, close = _operator_context(data, needs_bridge=name in ("resume", "redrive"))
    try:
        result = operations.perform(
            name,
            store,
            bridge,
            course_id,
            operator=_operator(operator),
            reason=reason,
            step=step,
            at=at,
        )
    except operations.OperationError as err:
        _refused(err, as_json)
    finally:
        close()
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['operation']} {course_id}: now {result['status']} (version {result['version']},"
        f" by {result['actor']})"
    )
    if result.get("tasks"):
        click.echo(f"redriven: {', '.join(result['tasks'])}")
    if result.get("at"):
        click.echo(f"held until {result['at']}: what is due is scheduled on its queue for then")
    if result.get("scheduled"):
        click.echo(f"scheduled: {', '.join(result['scheduled'])}")
    elif "scheduled" in result:  # recorded only: a running process schedules
        click.echo(_who_schedules(data))


def _migrate_command() -> Callable[..., None]:
    @click.argument("course_id")
    @click.option(
        "--to",
        "to",
        required=True,
        metavar="current|VERSION",
        help="The pipeline version to move to: current (schemas/pipeline.json) or a number.",
    )
    @click.option("--dry-run", is_flag=True, help="Show what the move changes; record nothing.")
    @click.option("--reason", default=None, help=REASON_HELP + " Not needed with --dry-run.")
    @click.option(
        "--operator",
        envvar="USER",
        default=None,
        help="Who acts: recorded as actor operator:NAME [env USER].",
    )
    @click.option("--json", "as_json", is_flag=True)
    def migrate(
        course_id: str,
        to: str,
        dry_run: bool,
        reason: str | None,
        operator: str | None,
        data: Path,
        as_json: bool,
    ) -> None:
        """Move COURSE_ID to another pipeline version (recorded as CourseMigrated): the steps
        it adds are scheduled once their prerequisites are done; refused for a course that
        ended, or while a task of a step the version drops is queued or running."""
        from bridge.ops import migrate as migration
        from bridge.ops import operations

        store, bridge, close = _operator_context(data, needs_bridge=not dry_run)
        try:
            result = migration.migrate(
                store,
                bridge,
                course_id,
                to=to,
                operator=_operator(operator),
                reason=reason,
                dry_run=dry_run,
            )
        except operations.OperationError as err:
            _refused(err, as_json)
        finally:
            close()
        if as_json:
            click.echo(json.dumps(result, indent=2))
            return
        for line in _migration_lines(result):
            click.echo(line)
        if not dry_run and result.get("scheduled") is None:
            click.echo(_who_schedules(data))

    return migrate


def _migration_lines(result: dict[str, Any]) -> list[str]:
    course, old, new = result["course_id"], result["from_version"], result["to_version"]
    if result["dry_run"]:
        head = f"migrate {course}: pipeline version {old} -> {new} (dry run: nothing recorded)"
    else:
        head = (
            f"migrate {course}: now on pipeline version {new}, was {old} (version"
            f" {result['version']}, by {result['actor']})"
        )

    def listed(items: Any) -> str:
        return ", ".join(items) or "none"

    lines = [
        head,
        f"  steps added:   {listed(result['added'])}",
        f"  steps dropped: {listed(result['dropped'])}",
    ]
    for step, move in result["requeued"].items():
        lines.append(f"  re-queued:     {step} ({move['from']} -> {move['to']})")
    for step, move in result["rewired"].items():
        lines.append(
            f"  rewired:       {step} (after {listed(move['from'])} -> {listed(move['to'])})"
        )
    if result["scheduled"]:
        verb = "would schedule" if result["dry_run"] else "scheduled"
        lines.append(f"  {verb}: {listed(result['scheduled'])}")
    return lines


def _who_schedules(data: Path) -> str:
    """Who advances a course after resume or redrive recorded only the operator event."""
    if Settings.from_env().get("COURSEGEN_STORE") != "sqlite":
        return "the reconciler schedules what is due within two reconcile periods"
    from bridge.runtime.embedded import live_processes

    running = live_processes(data)
    if running:
        names = ", ".join(f"{p.get('command') or 'coursegen'} (pid {p['pid']})" for p in running)
        return f"the running {names} schedules what is due within a second"
    return (
        f"no coursegen process is running on {data}: schedule what is due with"
        f" coursegen work --data {data} --until-idle (or coursegen serve)"
    )


def _operator_context(data: Path, *, needs_bridge: bool) -> tuple[Any, Any, Callable[[], None]]:
    """The store, a bridge (None: the operation records its event only) and how to close them.

    On the embedded store the CLI never dispatches: its in-memory queue would die with the
    command. It records the event; the reconciler loop of the process running the course
    (``coursegen serve``, ``run`` or ``work`` on the same --data) notices the course moved and
    schedules what is due. Against Firestore with Cloud Tasks it advances at once (the
    queues outlive the command); otherwise the cloud's reconciler advances it."""
    from bridge.cli.common import open_store as _store

    cfg = Settings.from_env()
    kind = cfg.get("COURSEGEN_STORE")
    if kind == "firestore" and needs_bridge and cfg.get("COURSEGEN_DISPATCHER") == "cloudtasks":
        from bridge.runtime.cloud import cloud_runtime

        crt = cloud_runtime(cfg)
        return crt.store, crt.bridge, crt.close
    store = _store(data, cfg)
    return store, None, store.close


def _work_command() -> Callable[..., None]:
    @click.option(
        "--until-idle",
        is_flag=True,
        help="Stop once no course is active or nothing is queued (default: run until Ctrl-C).",
    )
    @click.option(
        "--workers",
        default=4,
        show_default=True,
        type=click.IntRange(min=1),
        help="Delivery threads.",
    )
    @click.option(
        "--processes",
        default=1,
        show_default=True,
        type=click.IntRange(min=1, max=64),
        help="Worker processes on --data, each owning its share of the courses (one "
        "interpreter runs on one core; --workers threads each).",
    )
    @click.option("--synthetic", is_flag=True, hidden=True, help="No-op steps (drills, tests).")
    @click.option("--json", "as_json", is_flag=True)
    def work(
        data: Path,
        until_idle: bool,
        workers: int,
        processes: int,
        synthetic: bool,
        as_json: bool,
    ) -> None:
        """Run the embedded runtime on --data: re-enqueue the waiting tasks of every active
        course (the local queue lives in memory and dies with its process), then deliver.

        With --processes N, N processes share the store: each recovers, runs and reconciles
        the courses of its share (a stable hash of the course id) and keeps to its share of
        each queue's rate and concurrency limits."""
        from bridge.cli.common import open_store as _store
        from bridge.cli.work import work_here, work_processes

        cfg = Settings.from_env()
        if cfg.get("COURSEGEN_STORE") != "sqlite":
            raise click.ClickException("work runs the embedded runtime: COURSEGEN_STORE=sqlite")
        _store(data, cfg).close()  # refuses a --data with no store, as the read commands do
        if processes > 1:
            shares = work_processes(
                data, processes, until_idle=until_idle, workers=workers, synthetic=synthetic
            )
            summary = _merged(shares, data, cfg)
            click.echo(json.dumps(summary, indent=2) if as_json else _work_line(summary))
            errors = [s["error"] for s in shares if "error" in s]
            for error in errors:
                click.echo(f"error: {error}", err=True)
            if errors:
                raise SystemExit(1)
            return
        summary = work_here(data, cfg, until_idle=until_idle, workers=workers, synthetic=synthetic)
        click.echo(json.dumps(summary, indent=2) if as_json else _work_line(summary))

    return work


def _merged(shares: list[dict[str, Any]], data: Path, cfg: Settings) -> dict[str, Any]:
    """One summary of ``work --processes``: the re-enqueued sums, the courses as they are now,
    and each process's own summary."""
    from bridge.cli.common import open_store as _store

    store = _store(data, cfg)
    try:
        counts: dict[str, int] = {}
        for head in store.courses():
            counts[head.status] = counts.get(head.status, 0) + 1
    finally:
        store.close()
    recovered = {"courses": 0, "tasks": 0}
    for share in shares:
        for key in recovered:
            recovered[key] += share.get("recovered", {}).get(key, 0)
    return {
        "recovered": recovered,
        "courses": counts,
        "interrupted": any(s.get("interrupted") for s in shares),
        "processes": shares,
    }


def _work_line(summary: dict[str, Any]) -> str:
    if summary.get("interrupted"):
        return "interrupted"
    r = summary["recovered"]
    return (
        f"re-enqueued {r['tasks']} tasks of {r['courses']} active courses; now {summary['courses']}"
    )


def _stats_command() -> Callable[..., None]:
    @click.option("--since", help="Only courses requested since: an ISO time or an age (24h, 7d).")
    @click.option("--json", "as_json", is_flag=True)
    def stats(data: Path, since: str | None, as_json: bool) -> None:
        """Per step and variant: count, p50/p95 duration, failure rate, attempts, cost."""
        from bridge.cli.common import open_store as _store
        from bridge.cli.common import text_table
        from bridge.ops.stats import collect, since_iso, summarize
        from statemachine.pipeline import default_pipeline

        try:
            cutoff = since_iso(since, time.time()) if since else None
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--since") from None
        store = _store(data)
        report = summarize(collect(store.scan(), cutoff), default_pipeline().order)
        if as_json:
            click.echo(json.dumps({"since": cutoff, **report}, indent=2))
            return
        click.echo(f"courses requested since {cutoff or 'the beginning'}\n")
        click.echo(text_table(report["variants"]))
        click.echo(text_table(report["steps"]))

    return stats


def _rebuild_command() -> Callable[..., None]:
    @click.option("--check", is_flag=True, help="Only compare; exit 2 if any projection differs.")
    @click.option("--json", "as_json", is_flag=True)
    def rebuild_projections(data: Path, check: bool, as_json: bool) -> None:
        """Rebuild every course head and task status row from the event log."""
        from bridge.cli.common import open_store as _store
        from bridge.ops.projections import rebuild

        report = rebuild(_store(data), check_only=check).as_dict()
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            verb = "differ" if check else "were rewritten"
            click.echo(
                f"{report['courses']} courses, {report['tasks']} tasks: "
                f"{report['changed']} courses' projections {verb}"
            )
        if report["moved"] or (check and report["changed"]):
            sys.exit(2)

    return rebuild_projections


def _refused(err: operations.OperationError, as_json: bool) -> NoReturn:
    """An operation refused: its problem document on stderr (exit 1) with ``--json``, else the
    reason and the course's state as the command's error."""
    if as_json:
        click.echo(json.dumps(err.problem(), indent=2), err=True)
        sys.exit(1)
    state = f"\n{json.dumps(err.state, indent=2)}" if err.state else ""
    raise click.ClickException(f"{err.detail}{state}") from None
