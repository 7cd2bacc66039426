"""``coursegen queues sync [--dry-run]``: create or update every Cloud Tasks queue from
pipeline.json (retry config, rate limits, logging), showing the difference first."""

from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    """Add the ``queues`` group to ``coursegen``."""
    main.add_command(queues)


@click.group()
def queues() -> None:
    """Cloud Tasks queues from schemas/pipeline.json (Terraform sets the same in production)."""


@queues.command("sync")
@click.option("--dry-run", is_flag=True, help="Show what would change; send nothing.")
@click.option(
    "--project",
    envvar="GOOGLE_CLOUD_PROJECT",
    required=True,
    help="Project of the queues [env GOOGLE_CLOUD_PROJECT].",
)
@click.option(
    "--region",
    envvar="COURSEGEN_REGION",
    default="europe-west1",
    show_default=True,
    help="Location of the queues [env COURSEGEN_REGION].",
)
@click.option(
    "--emulator",
    envvar="CLOUD_TASKS_EMULATOR_HOST",
    default=None,
    help="host:port of a Cloud Tasks emulator [env CLOUD_TASKS_EMULATOR_HOST]; "
    "default: the Cloud Tasks API with application default credentials.",
)
@click.option(
    "--logging-sampling-ratio",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Fraction of task operations Cloud Tasks logs (Terraform's logging_sampling_ratio).",
)
@click.option("--json", "as_json", is_flag=True)
def sync(
    dry_run: bool,
    project: str,
    region: str,
    emulator: str | None,
    logging_sampling_ratio: float,
    as_json: bool,
) -> None:
    """Create or update each queue as pipeline.json says; print the difference first."""
    from bridge.ops import queues as ops
    from bridge.runtime.cloud import tasks_client_for

    client = tasks_client_for(emulator or None)
    changes = ops.plan(client, project, region, logging_sampling_ratio=logging_sampling_ratio)
    done = [] if dry_run else ops.sync(client, project, region, changes)
    if as_json:
        report = {"dry_run": dry_run, "changes": [c.as_dict() for c in changes], "done": done}
        click.echo(json.dumps(report, indent=2))
        return
    for change in changes:
        click.echo(f"{change.action:9} {change.queue}")
        for key, (now, wanted) in change.fields.items():
            click.echo(f"    {key}: {'-' if now is None else now} -> {wanted}")
    pending = [c.queue for c in changes if c.action != "unchanged"]
    if dry_run:
        click.echo(f"dry run: {len(pending)} of {len(changes)} queues would change")
    else:
        click.echo(f"{len(done)} of {len(changes)} queues created or updated in {project}/{region}")
