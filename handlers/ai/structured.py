"""What the Gemini and OpenAI providers share: schema conversion for each API, the
validate-then-repair-once loop, metering, and helpers for mapping SDK errors.

The SDKs return JSON that does not match the requested schema without complaint, so every
answer is validated here against ``schemas/ai/<name>.json``. An invalid answer gets one repair
request that names the problems; a second invalid answer is a PermanentProviderError whose
message lists them (the message ends up in the TaskFailed event).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemas
from handlers.ai.port import PermanentProviderError
from handlers.ai.pricing import Price, estimate_cost
from handlers.ai.prompts import REPAIR

# Keywords each API accepts in a structured-output schema. Whatever else the schema says
# (minLength, $schema, ...) is dropped for the API and still enforced by our validation.
GEMINI_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems",
        "enum", "format", "minimum", "maximum", "minItems", "maxItems", "anyOf", "oneOf",
        "description", "title", "$ref", "$defs", "nullable",
    }
)  # fmt: skip
OPENAI_STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const",
        "anyOf", "description", "$ref", "$defs",
    }
)  # fmt: skip
# What llama.cpp's JSON-schema-to-grammar conversion enforces (local models, json_object).
GRAMMAR_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const",
        "anyOf", "oneOf", "minItems", "maxItems", "minLength", "maxLength", "minimum",
        "maximum", "$ref", "$defs",
    }
)  # fmt: skip
_SCHEMA_MAPS = ("properties", "$defs")
_SCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")


def subset_schema(schema: Mapping[str, Any], keywords: frozenset[str]) -> dict[str, Any]:
    """A copy of ``schema`` with only ``keywords``; a bare ``enum`` of strings gains a type."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in keywords:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: subset_schema(sub, keywords) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [subset_schema(sub, keywords) for sub in value]
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = subset_schema(value, keywords)
        else:
            out[key] = value
    if "enum" in out and "type" not in out and all(isinstance(v, str) for v in out["enum"]):
        out["type"] = "string"
    return out


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` in the JSON Schema subset Gemini's ``response_json_schema`` accepts."""
    return subset_schema(schema, GEMINI_KEYWORDS)


def openai_strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` as OpenAI strict structured outputs want it: every object closed
    (``additionalProperties: false``) and listing every property as required; a property
    that was optional becomes nullable (``prune_nulls`` removes the nulls again)."""
    return _strict(subset_schema(schema, OPENAI_STRICT_KEYWORDS))


def _strict(node: dict[str, Any]) -> dict[str, Any]:
    for key in _SCHEMA_LISTS:
        if key in node:
            node[key] = [_strict(sub) for sub in node[key]]
    if "$defs" in node:
        node["$defs"] = {k: _strict(v) for k, v in node["$defs"].items()}
    if isinstance(node.get("items"), dict):
        node["items"] = _strict(node["items"])
    if node.get("type") == "object" or "properties" in node:
        props = {k: _strict(v) for k, v in node.get("properties", {}).items()}
        required = set(node.get("required", ()))
        for name, sub in props.items():
            if name not in required:
                props[name] = {"anyOf": [sub, {"type": "null"}]}
        node["properties"] = props
        node["required"] = list(props)
        node["additionalProperties"] = False
    return node


def prune_nulls(document: Any) -> Any:
    """Drop object members whose value is null (optional fields under strict mode)."""
    if isinstance(document, dict):
        return {k: prune_nulls(v) for k, v in document.items() if v is not None}
    if isinstance(document, list):
        return [prune_nulls(v) for v in document]
    return document


# --- metering ------------------------------------------------------------------------------


@dataclass(slots=True)
class Meter:
    """Token counts and cost of every call one provider method makes (repairs included)."""

    provider: str
    model: str
    prompt_version: str
    prices: Mapping[str, Price] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    audio_seconds: float = 0.0
    cost_usd: float = 0.0
    calls: int = 0

    def add(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        audio_seconds: float = 0.0,
        model: str | None = None,
    ) -> None:
        self.calls += 1
        self.input_tokens += int(input_tokens or 0)
        self.output_tokens += int(output_tokens or 0)
        self.audio_seconds += float(audio_seconds or 0.0)
        self.cost_usd += estimate_cost(
            model or self.model,
            input_tokens=int(input_tokens or 0),
            output_tokens=int(output_tokens or 0),
            audio_seconds=float(audio_seconds or 0.0),
            overrides=self.prices,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "calls": self.calls,
        }
        if self.audio_seconds:
            out["audio_seconds"] = round(self.audio_seconds, 3)
        return out


# --- the validate-then-repair loop ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One model answer: its text and what it cost."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RepairRequest:
    """What a provider appends to the conversation to ask for a corrected answer."""

    previous: str  # the invalid answer, as the model's turn
    instruction: str  # the user's turn naming the problems
    errors: tuple[str, ...] = field(default=())


def check(schema_name: str, text: str, *, prune: bool = False) -> tuple[Any, list[str]]:
    """Parse ``text`` as JSON and validate it: (document, problems)."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        return None, [f"the answer is not valid JSON ({err})"]
    if prune:
        document = prune_nulls(document)
    try:
        schemas.validate(schema_name, document)
    except schemas.SchemaError as err:
        return document, list(err.errors)
    return document, []


def structured_answer(
    schema_name: str,
    ask: Callable[[RepairRequest | None], Reply],
    meter: Meter,
    *,
    prune: bool = False,
) -> dict[str, Any]:
    """Ask once; if the answer breaks ``schema_name``, ask once more naming the problems.

    ``ask(None)`` makes the first request, ``ask(repair)`` the repair request; each reply is
    metered. A second invalid answer raises PermanentProviderError listing the problems.
    """
    reply = ask(None)
    meter.add(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
    document, problems = check(schema_name, reply.text, prune=prune)
    if not problems:
        return dict(document)
    repair = RepairRequest(
        previous=reply.text or "(empty answer)",
        instruction=REPAIR.render(errors="\n".join(f"- {p}" for p in problems)),
        errors=tuple(problems),
    )
    reply = ask(repair)
    meter.add(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)
    document, problems = check(schema_name, reply.text, prune=prune)
    if not problems:
        return dict(document)
    raise PermanentProviderError(
        f"{schema_name}: the {meter.provider} model {meter.model} answered with JSON that does "
        f"not match the schema, twice (after one repair request): " + "; ".join(problems),
        metering=meter.as_dict(),
    )


# --- errors --------------------------------------------------------------------------------


def retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        return max(0.0, seconds) if seconds == seconds else None  # NaN -> None
    return None


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced (defence in depth: SDK messages echo servers)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def transport_errors() -> tuple[type[BaseException], ...]:
    """Timeout and connection exception classes of the HTTP stacks under the SDKs."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        found.append(module.TransportError)
    return tuple(found)
