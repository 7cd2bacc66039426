"""The no-op course DAG as a Restate service, served by hypercorn for peers.py
(``hypercorn peer_restate:app``)."""

from __future__ import annotations

from typing import Any

import restate

dag = restate.Service("CourseDag")


def noop_step(task: str, course: int) -> dict[str, Any]:
    """One step of the DAG: does nothing, returns a small summary (journaled by ``ctx.run``)."""
    return {"task": task, "course": course}


@dag.handler()
async def run(ctx: restate.Context, request: dict[str, Any]) -> int:
    """One invocation per course: each level of the DAG as ``ctx.run`` actions awaited together."""
    course = int(request["course"])
    done = 0
    for level in request["levels"]:
        futures = [
            ctx.run_typed(task, noop_step, restate.RunOptions(max_attempts=3), task, course)
            for task in level
        ]
        await restate.gather(*futures)
        for future in futures:
            await future
        done += len(futures)
    return done


app = restate.app(services=[dag])
