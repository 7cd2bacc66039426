"""Timestamps as fixed-width UTC ISO-8601 strings (they sort as text), and back."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(seconds: float) -> str:
    """``2026-11-28T19:04:32.123456Z`` for seconds since the epoch."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> float:
    """Seconds since the epoch for an ISO-8601 time (``Z`` or an offset)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
