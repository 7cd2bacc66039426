"""``coursegen cloud-local``: the deployed topology on this machine (up, down, status, submit,
wait, kill, restart). The logic is in bridge.tooling.cloud_local."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from statemachine.lifecycle import CourseStatus

dir_option = click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COURSEGEN_CLOUD_LOCAL_DIR",
    default=".coursegen/cloud-local",
    show_default=True,
    help="Where the stack keeps its state, logs and process groups "
    "[env COURSEGEN_CLOUD_LOCAL_DIR].",
)


def register(main: click.Group) -> None:
    """Add ``cloud-local`` to ``coursegen``."""
    main.add_command(cloud_local)


@click.group("cloud-local")
def cloud_local() -> None:
    """The production topology on one machine: emulators, Terraform's resources, and each
    function of main.py as its own functions-framework process on 127.0.0.1."""


@cloud_local.command()
@dir_option
@click.option("--project", default="coursegen-local", show_default=True)
@click.option(
    "--synthetic",
    "step_seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Synthetic steps taking this many seconds each, instead of media and AI (tests).",
)
@click.option(
    "--reconcile-every",
    type=click.FloatRange(min=0.2),
    default=300.0,
    show_default=True,
    help="Seconds between reconcile runs (Terraform's schedule: every 5 minutes).",
)
@click.option(
    "--quiet-seconds",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="COURSEGEN_RECONCILE_QUIET_SECONDS of the bridge (Terraform's default: 300).",
)
def up(
    folder: Path,
    project: str,
    step_seconds: float | None,
    reconcile_every: float,
    quiet_seconds: int,
) -> None:
    """Start everything; print `export ...` lines that reach the stack."""
    from bridge.tooling import cloud_local as cl
    from bridge.tooling.cloud_procs import StartFailed

    try:
        state = cl.up(
            folder,
            project=project,
            step_seconds=step_seconds,
            reconcile_every_s=reconcile_every,
            quiet_s=quiet_seconds,
        )
    except (cl.AlreadyUp, StartFailed) as err:
        raise click.ClickException(str(err)) from None
    groups, count = cl.process_count(state)
    click.echo(
        f"cloud-local up in {state.dir}: {groups} process groups, {count} processes", err=True
    )
    for line in cl.export_lines(state):
        click.echo(line)


@cloud_local.command()
@dir_option
def down(folder: Path) -> None:
    """Stop exactly the process groups `up` recorded in DIR."""
    from bridge.tooling import cloud_local as cl

    stopped = cl.down(folder)
    click.echo(f"stopped {len(stopped)} process groups: {', '.join(stopped) or '(none)'}")


@cloud_local.command()
@dir_option
@click.option("--json", "as_json", is_flag=True)
def status(folder: Path, as_json: bool) -> None:
    """List the recorded process groups: running or not, processes, address, log."""
    from bridge.tooling import cloud_local as cl

    try:
        rows = cl.status(folder)
    except cl.NotUp as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "running" if r["running"] else "stopped"
        click.echo(
            f"{r['name']:<20} {state:<8} pgid {r['pgid']:<8} "
            f"{r['processes']:>2} proc  {r['listens']}"
        )


@cloud_local.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Course title (default: from the file name).")
@click.option(
    "--course-id", help="Course id (default: a new one); the same id re-sends the request."
)
@dir_option
def submit(video: Path, title: str | None, course_id: str | None, folder: Path) -> None:
    """Upload VIDEO to the stack's bucket and publish a request for its gs:// URI; prints the
    course id."""
    from bridge.tooling import cloud_course
    from bridge.tooling import cloud_local as cl

    try:
        state = cl.State.load(folder.resolve())
    except cl.NotUp as err:
        raise click.ClickException(str(err)) from None
    click.echo(cloud_course.submit(state, video, title=title, course_id=course_id))


@cloud_local.command()
@click.argument("course_id")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@dir_option
def wait(course_id: str, timeout: float, as_json: bool, folder: Path) -> None:
    """Block until COURSE_ID is terminal: exit 0 if completed, 1 naming the failed step,
    3 on timeout. Prints per-step wall times and the stack's process count."""
    from bridge.tooling import cloud_course
    from bridge.tooling import cloud_local as cl

    try:
        state = cl.State.load(folder.resolve())
    except cl.NotUp as err:
        raise click.ClickException(str(err)) from None
    outcome = cloud_course.wait(state, course_id, timeout_s=timeout)
    if as_json:
        click.echo(json.dumps(outcome.as_dict(), indent=2))
    else:
        click.echo(f"course {course_id}: {outcome.status} in {outcome.wall_s} s")
        for step, t in outcome.steps.items():
            click.echo(
                f"  {step:<20} wall {t['wall_s']} s  work {t['work_s']} s  "
                f"{t['tasks']} tasks  {t['attempts']} attempts  {t['status']}"
            )
        click.echo(
            f"  stack: {outcome.process_groups} process groups, {outcome.processes} processes"
        )
    if outcome.status == CourseStatus.COMPLETED:
        return
    if outcome.status in (CourseStatus.RUNNING, "unknown"):
        click.echo(
            f"course {course_id} is not terminal after {timeout} s ({outcome.status})", err=True
        )
        sys.exit(3)
    reason = (outcome.failure or {}).get("reason", "")
    click.echo(
        f"course {course_id} {outcome.status} in step {outcome.failed_step}: {reason}", err=True
    )
    sys.exit(1)


@cloud_local.command()
@click.argument("name")
@click.option("--signal", "sig", default="KILL", show_default=True, help="Signal name.")
@dir_option
def kill(name: str, sig: str, folder: Path) -> None:
    """Send a signal to one recorded process group (a crashed instance, for fault drills)."""
    from bridge.tooling import cloud_local as cl

    number = getattr(signal, f"SIG{sig.upper().removeprefix('SIG')}", None)
    if not isinstance(number, int):
        raise click.BadParameter(f"no signal {sig!r}")
    try:
        sent = cl.kill(folder, name, number)
    except (cl.NotUp, KeyError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{name}: {'signalled' if sent else 'not running'}")


@cloud_local.command()
@click.argument("name")
@dir_option
def restart(name: str, folder: Path) -> None:
    """Start a stopped function (or the scheduler) again, as `up` did."""
    from bridge.tooling import cloud_local as cl
    from bridge.tooling.cloud_procs import StartFailed

    try:
        proc = cl.restart(folder, name)
    except (cl.NotUp, cl.AlreadyUp, StartFailed, KeyError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{name}: running (process group {proc.pgid})")
