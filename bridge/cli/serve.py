"""``coursegen serve`` (the dashboard and the local stack) and ``coursegen diagram``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.cli.common import data_option


def register(main: click.Group) -> None:
    """Add ``serve`` and ``diagram`` to ``coursegen``."""
    main.add_command(serve)
    main.add_command(diagram)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="COURSEGEN_SERVE_HOST",
    help="Address to bind [env COURSEGEN_SERVE_HOST]; keep it on loopback.",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="COURSEGEN_SERVE_PORT",
    help="Port [env COURSEGEN_SERVE_PORT]; 0 picks a free one.",
)
@data_option
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    envvar="COURSEGEN_SERVE_WORKERS",
    help="Local dispatcher workers running tasks; 0 only shows [env COURSEGEN_SERVE_WORKERS].",
)
@click.option(
    "--synthetic",
    is_flag=True,
    help="No-op steps instead of the real ones (demos and tests: no media, no AI).",
)
def serve(host: str, port: int, data: Path, workers: int, synthetic: bool) -> None:
    """Serve the live dashboard, its JSON API, /openapi.json, /tasks and the bridge's push
    and operator routes: a whole local stack in one process.

    Operator and push routes take ``Authorization: Bearer $COURSEGEN_OPERATOR_TOKEN``.
    """
    import logging

    from bridge.settings import Settings
    from bridge.web.dashboard.stack import local_stack
    from bridge.web.dashboard.stack import serve as run_server

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = Settings.from_env(COURSEGEN_DATA_DIR=str(data))
    steps = None
    if synthetic:
        from bridge.tooling.synthetic import noop_steps
        from statemachine.pipeline import default_pipeline

        steps = noop_steps(default_pipeline())
    stack = local_stack(data, settings=cfg, steps=steps, workers=workers)
    click.echo(f"coursegen dashboard: http://{host}:{port}/  (data {data})", err=True)
    try:
        run_server(stack.app, host, port)
    except KeyboardInterrupt:
        pass
    finally:
        stack.close()


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "svg", "png"]),
    default="mermaid",
    show_default=True,
)
@click.option(
    "--which",
    type=click.Choice(["all", "course", "task", "pipeline"]),
    default="all",
    show_default=True,
    help="One diagram, or all three (stacked in one SVG/PNG).",
)
@click.option(
    "--highlight",
    multiple=True,
    metavar="NODE[=STATUS]",
    help="Colour a state or step (e.g. running, or transcribe=succeeded); repeatable.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output (needed for png).",
)
def diagram(fmt: str, which: str, highlight: tuple[str, ...], out: Path | None) -> None:
    """Draw the course and task lifecycles and the step DAG from their definitions."""
    from bridge import diagrams

    names = diagrams.NAMES if which == "all" else (which,)
    marks = {}
    for item in highlight:
        node, _, status = item.partition("=")
        marks[node] = status or node
    unknown = set(marks) - {n for name in names for n in diagrams.graph(name).nodes}
    if unknown:
        raise click.BadParameter(f"no such state or step: {', '.join(sorted(unknown))}")
    data = diagrams.render(names, fmt, marks)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        click.echo(f"wrote {out}", err=True)
    elif fmt == "png":
        raise click.UsageError("--format png needs --out FILE")
    else:
        sys.stdout.write(data.decode())
