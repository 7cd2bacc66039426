"""What the coursegen commands share: the --data option, opening the store, printing JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bridge.settings import Settings
from statemachine.store import make_store


def open_store(data: Path, settings: Settings | None = None) -> Any:
    cfg = settings or Settings.from_env()
    kind = cfg.get("COURSEGEN_STORE")
    if kind == "sqlite":
        path = data / "events.db"
        if not path.exists():
            raise click.ClickException(f"no event store at {path} (run a course first, or --data)")
        return make_store("sqlite", path=path, synchronous=cfg.get("COURSEGEN_SQLITE_SYNCHRONOUS"))
    if kind == "firestore":
        return make_store("firestore", project=cfg.get("GOOGLE_CLOUD_PROJECT") or None)
    raise click.ClickException(f"the {kind} store keeps nothing between commands")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COURSEGEN_DATA_DIR",
    default=".coursegen",
    show_default=True,
    help="Folder of the embedded event store and artifacts [env COURSEGEN_DATA_DIR].",
)
