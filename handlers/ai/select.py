"""Which provider serves an AI step: request option, then environment, then pipeline.json;
and how the Gemini, OpenAI and local providers are built from the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from handlers.ai.port import AIProvider, PermanentProviderError
from statemachine.pipeline import default_pipeline

PROVIDERS = ("offline", "gemini", "openai", "local")
KEY_SETTINGS = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY"}


class MissingCredentials(PermanentProviderError):
    """A provider was chosen whose API key is not set; names the variable, never a value."""


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
    if name == "gemini":
        return gemini_provider(settings)
    if name == "local":
        return local_provider(settings)
    return openai_provider(settings)


def gemini_provider(settings: Any) -> AIProvider:
    from handlers.ai.gemini import GeminiConfig, GeminiProvider

    return GeminiProvider(
        GeminiConfig(
            api_key=api_key("gemini", settings),
            model=setting(settings, "COURSEGEN_GEMINI_MODEL", "gemini-2.5-flash"),
            base_url=setting(settings, "COURSEGEN_GEMINI_BASE_URL", "") or None,
            timeout_s=float(setting(settings, "COURSEGEN_AI_TIMEOUT_S", "300")),
            attempts=int(setting(settings, "COURSEGEN_AI_MAX_RETRIES", "3")) + 1,
            prices=_prices(settings),
        )
    )


def openai_provider(settings: Any) -> AIProvider:
    from handlers.ai.openai_provider import OpenAIConfig, OpenAIProvider

    return OpenAIProvider(
        OpenAIConfig(
            api_key=api_key("openai", settings),
            model=setting(settings, "COURSEGEN_OPENAI_MODEL", "gpt-4.1-mini"),
            transcribe_model=setting(settings, "COURSEGEN_OPENAI_TRANSCRIBE_MODEL", "whisper-1"),
            base_url=setting(settings, "COURSEGEN_OPENAI_BASE_URL", "") or None,
            timeout_s=float(setting(settings, "COURSEGEN_AI_TIMEOUT_S", "300")),
            max_retries=int(setting(settings, "COURSEGEN_AI_MAX_RETRIES", "3")),
            prices=_prices(settings),
        )
    )


def local_provider(settings: Any) -> AIProvider:
    """The local model behind an OpenAI-compatible server on loopback (no key, no cost)."""
    from handlers.ai.local import (
        DEFAULT_MAX_TOKENS,
        DEFAULT_MODEL,
        DEFAULT_URL,
        LocalConfig,
        LocalProvider,
    )

    return LocalProvider(
        LocalConfig(
            base_url=setting(settings, "COURSEGEN_LOCAL_MODEL_URL", DEFAULT_URL),
            model=setting(settings, "COURSEGEN_LOCAL_MODEL", DEFAULT_MODEL),
            timeout_s=float(setting(settings, "COURSEGEN_AI_TIMEOUT_S", "300")),
            max_output_tokens=int(
                setting(settings, "COURSEGEN_LOCAL_MODEL_MAX_TOKENS", str(DEFAULT_MAX_TOKENS))
            ),
        )
    )


def api_key(provider: str, settings: Any) -> str:
    """The provider's key from the settings (or the environment); MissingCredentials names
    the variable to set when it is empty."""
    env = KEY_SETTINGS[provider]
    value = setting(settings, env, "").strip()
    if not value:
        raise MissingCredentials(
            f"{env} is not set: the {provider} provider needs an API key "
            f"(environment variable {env}; Secret Manager in the cloud)"
        )
    return value


def setting(settings: Any, env: str, default: str) -> str:
    """A setting from a ``Settings`` snapshot (the environment when there is none, or when
    the snapshot does not know the setting); ``default`` when it is empty."""
    value: Any = None
    if settings is not None:
        try:
            value = settings.get(env)
        except KeyError:
            value = os.environ.get(env)
    else:
        value = os.environ.get(env)
    return str(value) if value else default


def _prices(settings: Any) -> Any:
    from handlers.ai.pricing import parse_overrides

    return parse_overrides(setting(settings, "COURSEGEN_AI_PRICES", "{}"))
