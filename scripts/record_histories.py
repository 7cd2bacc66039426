"""Record tests/histories/*.jsonl: real courses on the embedded runtime, every lifecycle path.

Each scenario runs one course through the real bridge, task endpoint, local dispatcher and
SQLite store, on a virtual clock, with the synthetic no-op steps (bridge/tooling/synthetic.py)
and injected faults and operator actions (a transient failure, a permanent one, a queue that
gives up, a cancel, a pause and a resume, redrives of a failed and of a paused course). The
history is exported with the replay exporter (``coursegen replay COURSE --export jsonl``) to
``NAME.jsonl``; ``NAME.recorded.json`` beside it keeps what the run recorded besides its
events: the head snapshot, and a digest of the state after each version. The shadow replay
(bridge/ops/shadow.py) re-derives them in CI with the current code.

    python scripts/record_histories.py [--out tests/histories] [--only NAME ...]

Every history but ``migrated`` was recorded before courses were pinned to a pipeline
version (their CourseRequested names none): they stay as recorded, to keep replaying the
rule for unpinned courses (statemachine/upcast.py). Record a new scenario with ``--only``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.ops import migrate as migration  # noqa: E402
from bridge.ops import operations  # noqa: E402
from bridge.ops.replay import export_jsonl  # noqa: E402
from bridge.ops.shadow import state_digests  # noqa: E402
from bridge.runtime.clock import VirtualClock  # noqa: E402
from bridge.runtime.embedded import Runtime, embedded  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from bridge.tooling.synthetic import noop_steps  # noqa: E402
from handlers.registry import (  # noqa: E402
    PermanentStepError,
    StepContext,
    StepFn,
    StepResult,
    TransientStepError,
)
from statemachine.pipeline import default_pipeline, default_pipelines  # noqa: E402

# What happens when a step runs: (task name, generation) -> an action; it may raise, or act
# as an operator would while the step runs, and then the no-op step itself runs.
Action = Callable[[Runtime, StepContext], None]


@dataclass
class Scenario:
    name: str
    about: str
    actions: Mapping[tuple[str, int], Action] = field(default_factory=dict)
    after: Callable[[Runtime, str], None] | None = None  # once the course is idle
    runtime: Mapping[str, Any] = field(default_factory=dict)  # options for ``embedded``
    # Tenants: the course's tenant, COURSEGEN_TENANT_LIMITS, what runs before its request
    # (other courses of its tenant) and right after it (while it may still wait in line).
    tenant: str | None = None
    tenant_limits: str = ""
    before: Callable[[Runtime], None] | None = None
    first: Callable[[Runtime, str], None] | None = None


def transient_once(rt: Runtime, ctx: StepContext) -> None:
    if ctx.attempt == 1:
        raise TransientStepError("injected: the provider answered 503")


def transient_always(rt: Runtime, ctx: StepContext) -> None:
    raise TransientStepError("injected: the provider keeps answering 503")


def permanent(rt: Runtime, ctx: StepContext) -> None:
    raise PermanentStepError("injected: the input cannot be processed")


def operator(op: str) -> Action:
    def act(rt: Runtime, ctx: StepContext) -> None:
        operations.perform(
            op,
            rt.store,
            rt.bridge,
            ctx.course.course_id,
            operator="recorder",
            reason=f"recorded scenario: {op} while {ctx.task.name} runs",
        )

    return act


def reports_progress(ticks: int, every_s: float) -> Action:
    """A long step: it reports progress ``ticks`` times, ``every_s`` apart on the virtual
    clock (the checkpoint appends a throttled TaskProgress now and then)."""

    def act(rt: Runtime, ctx: StepContext) -> None:
        clock = rt.clock
        assert isinstance(clock, VirtualClock)
        for tick in range(1, ticks + 1):
            clock.advance_to(clock.now() + every_s)
            ctx.progress(tick, ticks)

    return act


def migrate_to_current(rt: Runtime, ctx: StepContext) -> None:
    """An operator moves the course to the current pipeline version while the step runs."""
    migration.migrate(
        rt.store,
        rt.bridge,
        ctx.course.course_id,
        to="current",
        operator="recorder",
        reason=f"recorded scenario: migrate while {ctx.task.name} runs",
        pipelines=default_pipelines(),
    )


def both(*actions: Action) -> Action:
    def act(rt: Runtime, ctx: StepContext) -> None:
        for a in actions:
            a(rt, ctx)

    return act


def then_operate(*ops: str) -> Callable[[Runtime, str], None]:
    def after(rt: Runtime, course_id: str) -> None:
        for op in ops:
            operations.perform(
                op, rt.store, rt.bridge, course_id, operator="recorder", reason=f"recorded: {op}"
            )
            rt.run_until_idle()

    return after


def occupied(tenant: str, *, finish: bool = False) -> Callable[[Runtime], None]:
    """Another course of ``tenant`` takes its place first (and ends first, if ``finish``:
    what it costs counts towards the tenant's budget of the day); the clock then moves on a
    minute, so that the recorded course's events come visibly after it."""

    def before(rt: Runtime) -> None:
        message = {"videoUri": "gs://recorded/first.mp4", "title": "first", "tenant": tenant}
        rt.bridge.ingest(message, message_id=f"history-first-{tenant}")
        if finish:
            rt.run_until_idle()
        clock = rt.clock
        assert isinstance(clock, VirtualClock)
        clock.advance_to(clock.now() + 60)

    return before


def operate_now(op: str) -> Callable[[Runtime, str], None]:
    def first(rt: Runtime, course_id: str) -> None:
        operations.perform(
            op, rt.store, rt.bridge, course_id, operator="recorder", reason=f"recorded: {op}"
        )

    return first


SCENARIOS = (
    Scenario("completed", "every step succeeds the first time"),
    Scenario(
        "retried",
        "transcribe and a frame shard fail once (retryable), the queue retries them",
        {("transcribe", 1): transient_once, ("analyze_frames#2", 1): transient_once},
    ),
    Scenario(
        "failed",
        "analyze_video fails permanently: the course fails",
        {("analyze_video", 1): permanent},
    ),
    Scenario(
        "failed_cancelled",
        "a permanent failure, then an operator cancels the failed course",
        {("generate_structure", 1): permanent},
        then_operate("cancel"),
    ),
    Scenario(
        "redriven",
        "a frame shard fails permanently; an operator redrives; the course completes",
        {("analyze_frames#1", 1): permanent},
        then_operate("redrive"),
    ),
    Scenario(
        "exhausted",
        "transcribe fails on every attempt until the queue gives up; redriven, it completes",
        {("transcribe", 1): transient_always},
        then_operate("redrive"),
    ),
    Scenario(
        "cancelled",
        "an operator cancels the course while extract_frames runs",
        {("extract_frames", 1): operator("cancel")},
    ),
    Scenario(
        "paused",
        "paused while transcribe runs (results still recorded), then resumed",
        {("transcribe", 1): operator("pause")},
        then_operate("resume"),
    ),
    Scenario(
        "paused_redriven",
        "paused; a step fails permanently while paused; redriven and resumed",
        {("extract_frames", 1): operator("pause"), ("transcribe_chunk#1", 1): permanent},
        then_operate("redrive", "resume"),
    ),
    Scenario(
        "paused_cancelled",
        "paused while add_interactivity runs, then cancelled",
        {("add_interactivity", 1): both(operator("pause"))},
        then_operate("cancel"),
    ),
    Scenario(
        "progressed",
        "an audio chunk reports its progress as it runs (TaskProgress); the course completes",
        {("transcribe_chunk#0", 1): reports_progress(ticks=12, every_s=1.0)},
        # the no-op steps take no time: record each start before the step runs (a real long
        # step has its start recorded 0.1 s in, long before its first progress report)
        runtime={"record_start_after_s": 0},
    ),
    Scenario(
        "migrated",
        "started on pipeline version 1 (no transcribe_chunk); an operator migrates it to the"
        " current version while extract_frames runs; it completes on the current DAG",
        {("extract_frames", 1): migrate_to_current},
        # a deployment of version 1: the course is pinned to it when it is requested
        runtime={"pipelines": default_pipelines().with_current(1)},
    ),
    Scenario(
        "queued",
        "its tenant (one active course at most) is busy: it waits queued, then is admitted",
        tenant="acme",
        tenant_limits='{"tenants": {"acme": {"maxActive": 1}}}',
        before=occupied("acme"),
    ),
    Scenario(
        "queued_cancelled",
        "an operator cancels it while it waits queued for its tenant's place",
        tenant="acme",
        tenant_limits='{"tenants": {"acme": {"maxActive": 1}}}',
        before=occupied("acme"),
        first=operate_now("cancel"),
    ),
    Scenario(
        "held",
        "its tenant spent its daily AI budget: AI steps are held to the next day, then run",
        tenant="thrifty",
        tenant_limits='{"tenants": {"thrifty": {"dailyAiUsd": 0.02}}}',
        before=occupied("thrifty", finish=True),
    ),
)


def steps_for(scenario: Scenario, holder: dict[str, Runtime]) -> Mapping[str, StepFn]:
    pipeline = default_pipeline()
    base = noop_steps(pipeline)
    # an AI step's metering, for a tenant's daily budget to count
    cost = {"cost_usd": 0.01, "model": "recorded"} if scenario.tenant_limits else {}

    def wrap(name: str, inner: StepFn) -> StepFn:
        def step(ctx: StepContext) -> StepResult:
            action = scenario.actions.get((ctx.task.name, ctx.task.generation))
            if action is not None:
                action(holder["rt"], ctx)
            result = inner(ctx)
            if cost and pipeline.steps[name].provider is not None:
                return StepResult(outputs=result.outputs, summary=result.summary, metering=cost)
            return result

        return step

    return {name: wrap(name, fn) for name, fn in base.items()}


def record(scenario: Scenario, out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coursegen-record-") as tmp:
        holder: dict[str, Runtime] = {}
        env = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_TASK_SECRET": "recorder"}
        if scenario.tenant_limits:
            env["COURSEGEN_TENANT_LIMITS"] = scenario.tenant_limits
        settings = Settings.from_env(env)
        rt = embedded(
            tmp,
            settings=settings,
            steps=steps_for(scenario, holder),
            clock=VirtualClock(),
            **scenario.runtime,
        )
        holder["rt"] = rt
        try:
            if scenario.before is not None:
                scenario.before(rt)
            message = {"videoUri": f"gs://recorded/{scenario.name}.mp4", "title": scenario.about}
            if scenario.tenant is not None:
                message["tenant"] = scenario.tenant
            course_id = rt.bridge.ingest(message, message_id=f"history-{scenario.name}")
            if scenario.first is not None:
                scenario.first(rt, course_id)
            rt.run_until_idle()
            if scenario.after is not None:
                scenario.after(rt, course_id)
            events = rt.store.load(course_id)
            head = rt.store.head(course_id)
            assert head is not None
            with (out / f"{scenario.name}.jsonl").open("w", encoding="utf-8") as f:
                export_jsonl(events, f)
            recorded = {
                "course_id": course_id,
                "scenario": scenario.about,
                "status": head.status,
                "head": dict(head.snapshot),
                "states": state_digests(events),
            }
            (out / f"{scenario.name}.recorded.json").write_text(
                json.dumps(recorded, indent=1, sort_keys=True) + "\n", encoding="utf-8"
            )
            return {
                "name": scenario.name,
                "status": head.status,
                "events": len(events),
                "types": sorted({e.type for e in events}),
            }
        finally:
            rt.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "histories")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="Record only this scenario (repeatable): the others stay as they were recorded.",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for scenario in SCENARIOS:
        if args.only and scenario.name not in args.only:
            continue
        summary = record(scenario, args.out)
        seen.update(summary["types"])
        print(f"{summary['name']:18} {summary['status']:10} {summary['events']:3} events")
    print("event types:", ", ".join(sorted(seen)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
