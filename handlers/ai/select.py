"""Which provider serves an AI step: request option, then environment, then pipeline.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.ai.port import AIProvider
from statemachine.pipeline import default_pipeline

PROVIDERS = ("offline", "gemini", "openai")


def provider_name(step: str, settings: Any, options: Mapping[str, Any]) -> str:
    """``--provider`` / request options win, then COURSEGEN_PROVIDER, then pipeline.json."""
    chosen = options.get("provider") or (settings.get("COURSEGEN_PROVIDER") if settings else "")
    if not chosen:
        chosen = default_pipeline().steps[step].provider or "offline"
    if chosen not in PROVIDERS:
        raise ValueError(f"unknown AI provider {chosen!r}: use one of {', '.join(PROVIDERS)}")
    return str(chosen)


def provider_for(step: str, settings: Any, options: Mapping[str, Any]) -> AIProvider:
    name = provider_name(step, settings, options)
    if name == "offline":
        from handlers.ai.offline import OfflineProvider

        return OfflineProvider()
    raise NotImplementedError(f"the {name} provider is not wired in yet")
