"""Timestamps as fixed-width UTC ISO-8601 strings (they sort as text), and back."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(seconds: float) -> str:
    """``2026-11-28T19:04:32.123456Z`` for seconds since the epoch."""
    # isoformat, not strftime: same text, and strftime goes through the ``time`` module on
    # every call, which costs the busiest threads several times as much.
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_iso(value: str) -> float:
    """Seconds since the epoch for an ISO-8601 time (``Z`` or an offset)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
