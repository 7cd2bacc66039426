"""Prices of the AI models, in one table, and the cost estimate recorded with every call.

List prices in USD (Gemini API paid tier and OpenAI API, standard processing, mid-2025).
They change: edit this table, or override rows without a release through the
COURSEGEN_AI_PRICES setting (JSON: {"model": {"input_per_1m": .., "output_per_1m": ..,
"audio_per_minute": ..}}). The estimate is for dashboards, not for billing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Price:
    input_per_1m: float = 0.0  # USD per million input (prompt) tokens
    output_per_1m: float = 0.0  # USD per million output tokens, thinking tokens included
    audio_per_minute: float = 0.0  # USD per minute of audio (transcription models)


PRICES: Mapping[str, Price] = {
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "whisper-1": Price(audio_per_minute=0.006),
    "gpt-4o-transcribe": Price(2.50, 10.00, audio_per_minute=0.006),
    "gpt-4o-mini-transcribe": Price(1.25, 5.00, audio_per_minute=0.003),
}


def parse_overrides(raw: str) -> dict[str, Price]:
    """COURSEGEN_AI_PRICES: a JSON object of model name to Price fields."""
    doc = json.loads(raw or "{}")
    if not isinstance(doc, dict):
        raise ValueError("COURSEGEN_AI_PRICES must be a JSON object of model -> prices")
    names = {f.name for f in fields(Price)}
    out: dict[str, Price] = {}
    for model, row in doc.items():
        if not isinstance(row, dict) or not set(row) <= names:
            raise ValueError(f"COURSEGEN_AI_PRICES[{model!r}] may only set {sorted(names)}")
        out[str(model)] = Price(**{k: float(v) for k, v in row.items()})
    return out


def price_of(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price row of ``model``; a dated or suffixed name ("gpt-4o-2024-08-06",
    "models/gemini-2.5-flash-001") falls back to the longest known prefix."""
    table: dict[str, Price] = {**PRICES, **(overrides or {})}
    name = model.removeprefix("models/")
    if name in table:
        return table[name]
    prefixes = [known for known in table if name.startswith(known + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


def estimate_cost(
    model: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    audio_seconds: float = 0.0,
    overrides: Mapping[str, Price] | None = None,
) -> float:
    """Estimated USD cost of one or more calls to ``model``; 0.0 for a model not in the table."""
    price = price_of(model, overrides)
    if price is None:
        return 0.0
    cost = (
        input_tokens * price.input_per_1m / 1e6
        + output_tokens * price.output_per_1m / 1e6
        + audio_seconds / 60.0 * price.audio_per_minute
    )
    return round(cost, 6)


def describe(overrides: Mapping[str, Price] | None = None) -> list[dict[str, Any]]:
    """The table as rows (for docs and `coursegen` output)."""
    table = {**PRICES, **(overrides or {})}
    return [
        {
            "model": m,
            "input_per_1m": p.input_per_1m,
            "output_per_1m": p.output_per_1m,
            "audio_per_minute": p.audio_per_minute,
        }
        for m, p in sorted(table.items())
    ]
