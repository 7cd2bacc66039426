"""Tenants in the pure core: the default tenant's name and the budget hold of AI steps.

Which tenant is over its budget is the bridge's to know (it reads the metering of every
course); what a hold does to ``decide``'s commands is decided here, so that the shadow replay
(bridge/ops/shadow.py) can re-apply a recorded hold to what ``decide`` wants now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from statemachine.commands import Command, ScheduleTask
from statemachine.pipeline import Pipeline
from statemachine.state import DEFAULT_TENANT

__all__ = ["DEFAULT_TENANT", "ai_step", "hold_ai_steps"]


def ai_step(pipeline: Pipeline, step: str) -> bool:
    """Whether ``step`` calls an AI provider (its metering is what a tenant's budget counts)."""
    found = pipeline.steps.get(step)
    return found is not None and found.provider is not None


def hold_ai_steps(
    commands: Sequence[Command], pipeline: Pipeline, *, until: str, reason: str
) -> list[Command]:
    """``commands`` with every AI step's ``ScheduleTask`` held by its queue until ``until``
    (ISO time; a later hold the command has already is kept) and marked with ``reason``.
    Other commands, and steps that call no AI, are left as they are."""
    held: list[Command] = []
    for c in commands:
        if isinstance(c, ScheduleTask) and ai_step(pipeline, c.step):
            later = c.not_before if c.not_before and c.not_before > until else until
            c = replace(c, not_before=later, held=reason)
        held.append(c)
    return held
