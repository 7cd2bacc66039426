"""The no-op course DAG as a Temporal workflow (imported by peers.py; its own module so the
workflow sandbox can re-import it)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="noop_step")
async def noop_step(task: str, course: int) -> str:
    """One step of the DAG: does nothing, returns a small summary (the result is recorded)."""
    return f"{task}:{course}"


@workflow.defn(name="CourseDag")
class CourseDag:
    """One workflow per course: each level of the DAG as activities started together."""

    @workflow.run
    async def run(self, course: int, levels: list[list[str]]) -> int:
        done = 0
        for level in levels:
            results = await asyncio.gather(
                *(
                    workflow.execute_activity(
                        noop_step, args=[task, course], start_to_close_timeout=timedelta(minutes=5)
                    )
                    for task in level
                )
            )
            done += len(results)
        return done
