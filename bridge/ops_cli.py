"""Operator commands (cancel, pause, resume, redrive, stats, rebuild-projections, diagram)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add the operator commands to ``coursegen``."""
