"""What the steps share: reading and writing JSON artifacts, options, provider calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemas
from handlers.ai.port import AIProvider, AIResult, ProviderError
from handlers.ai.select import provider_for
from handlers.registry import PermanentStepError, StepContext, TransientStepError


def option(ctx: StepContext, name: str, default: Any) -> Any:
    """A request option (camelCase, from the course request), else the runtime's, else default."""
    request = ctx.course.request or {}
    options = request.get("options") or {}
    if name in options:
        return options[name]
    return ctx.services.options.get(name, default)


def read_json(ctx: StepContext, ref: str) -> Any:
    try:
        return json.loads(ctx.services.artifacts.get_bytes(ref))
    except FileNotFoundError:
        raise PermanentStepError(f"artifact {ref} is missing") from None


def slides(ctx: StepContext) -> list[dict[str, object]]:
    """Every shard's slide text, in time order (the fan-in of analyze_frames)."""
    found = []
    for shard in ctx.shards("analyze_frames"):
        found.extend(read_json(ctx, shard.outputs["slides"])["frames"])
    return sorted(found, key=lambda f: (float(f["t"]), str(f["name"])))


def require_every_frame_shard(ctx: StepContext) -> None:
    """PermanentStepError unless every analyze_frames shard extract_frames planned succeeded."""
    expected = int(ctx.upstream("extract_frames").summary.get("shards", 0))
    if len(ctx.shards("analyze_frames")) != expected:
        raise PermanentStepError(f"expected {expected} analyze_frames shards to have succeeded")


def write_json(ctx: StepContext, name: str, document: Any) -> str:
    data = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode()
    ref: str = ctx.services.artifacts.put_bytes(ctx.course_id, name, data)
    return ref


def local(ctx: StepContext, ref: str) -> Path:
    scratch = Path(ctx.services.scratch) / ctx.course_id
    scratch.mkdir(parents=True, exist_ok=True)
    path: Path = ctx.services.artifacts.local_path(ref, scratch)
    return path


def provider(ctx: StepContext) -> AIProvider:
    request = ctx.course.request or {}
    options = dict(ctx.services.options)
    options.update(request.get("options") or {})
    try:
        return provider_for(ctx.task.step, ctx.services.settings, options)
    except ProviderError:
        raise
    except (ValueError, NotImplementedError) as err:
        raise PermanentStepError(str(err)) from None


def call(ctx: StepContext, schema: str, fn: Callable[[], AIResult]) -> AIResult:
    """Run a provider call and validate its answer; map provider errors to step errors."""
    try:
        result = fn()
    except ProviderError as err:
        message = f"{ctx.task.step}: {err}"
        spent = getattr(err, "metering", None)
        if err.retryable:  # the provider's Retry-After goes on to the queue's answer
            raise TransientStepError(
                message, retry_after_s=err.retry_after_s, metering=spent
            ) from None
        raise PermanentStepError(message, metering=spent) from None
    try:
        schemas.validate(schema, result.data)
    except schemas.SchemaError as err:
        message = f"{ctx.task.step}: the provider's answer is invalid: {err}"
        raise PermanentStepError(message, metering=result.metering) from None  # paid for
    return result


def metering(results: list[AIResult]) -> dict[str, Any]:
    """Sum the metering of several calls (one step may call a provider more than once)."""
    out: dict[str, Any] = {}
    for r in results:
        for key, value in r.metering.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = round(out.get(key, 0) + value, 6)
            else:
                out.setdefault(key, value)
    return out
