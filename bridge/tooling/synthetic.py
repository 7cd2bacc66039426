"""Synthetic steps for simulations and benchmarks: no media, just the DAG's shape."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.registry import StepContext, StepFn, StepResult
from statemachine.pipeline import Pipeline

DEFAULT_SHARDS = 4


def noop_steps(pipeline: Pipeline, shards: int = DEFAULT_SHARDS) -> Mapping[str, StepFn]:
    """A no-op step per pipeline step; each fan-out source reports ``shards`` shards."""
    sources = {
        s.fan_out.source: s.fan_out.count_field for s in pipeline.steps.values() if s.fan_out
    }

    def make(name: str) -> StepFn:
        field = sources.get(name)

        def step(ctx: StepContext) -> StepResult:
            return StepResult(summary={field: shards} if field else {})

        return step

    return {name: make(name) for name in pipeline.steps}
