"""``coursegen serve``: the live dashboard, the operator API and the OpenAPI document."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add ``serve`` to ``coursegen``."""
