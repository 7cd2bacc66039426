"""Runtime wiring: one place that builds the store, dispatcher, endpoint and bridge from config.

Everything is wired at construction: the Bridge and the TaskEndpoint are frozen. One cycle
has to be closed, and it is closed in ``embedded`` only: the bridge hands tasks to the
endpoint (through the local queue and, while it is enabled, the legacy step documents) and the
endpoint asks the bridge what a result unblocks (``TaskEndpoint.follow``). The bridge is built
first, with transports that reach the endpoint through a ``Late`` (``bridge/runtime/late.py``);
then the endpoint, with ``follow=bridge``; then the ``Late`` is set, before anything can be
delivered. (``cloud.py`` has no cycle: its transports are Cloud Tasks and Firestore.)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bridge.core import Bridge
from bridge.dispatch import Dispatcher, TaskRequest
from bridge.dispatch.firestore_trigger import (
    LegacyDisabled,
    LegacyTriggerDispatcher,
    LocalStepDocuments,
    step_runner,
)
from bridge.dispatch.local import LocalDispatcher, Reply
from bridge.partition import WHOLE, Partition
from bridge.reconcile import ReconcileLoop
from bridge.runtime.clock import SystemClock
from bridge.runtime.late import Late
from bridge.runtime.stores import open_store
from bridge.settings import Settings
from bridge.tenancy import admission_for
from handlers.artifacts import LocalArtifacts
from handlers.auth import HmacVerifier, sign
from handlers.endpoint import RECORD_START_AFTER_S, TaskEndpoint
from handlers.outcomes import Answer
from handlers.registry import StepFn, real_steps
from handlers.services import StepServices
from statemachine.pipeline import Pipeline, Pipelines, default_pipelines
from statemachine.ports import Clock, EventStore
from statemachine.state import StateCache

TOKEN_TTL_S = 3600 * 24


@dataclass
class Runtime:
    settings: Settings
    store: EventStore
    clock: Clock
    pipeline: Pipeline
    endpoint: TaskEndpoint
    dispatcher: LocalDispatcher
    bridge: Bridge
    artifacts: LocalArtifacts
    notifications: list[tuple[str, int]] = field(default_factory=list)
    legacy: LocalStepDocuments | None = None  # the legacy transport, when it is enabled
    reconciler: ReconcileLoop | None = None
    root: Path | None = None  # the data folder: where ``start`` leaves its process marker

    def start(self, workers: int = 4, *, reconcile: bool = True) -> None:
        """Deliver on threads against the real clock, on every transport, and (``reconcile``)
        run the reconciler loop: courses another process changed (an operator's resume or
        redrive from the CLI) are advanced within about a second, quiet ones rescued.

        ``coursegen serve``, ``run`` and ``work`` all start here."""
        self.dispatcher.start(workers)
        if self.legacy is not None:
            self.legacy.start(max(1, workers // 2))
        if reconcile:
            if self.reconciler is None:
                quiet_s = float(self.settings.get_int("COURSEGEN_RECONCILE_QUIET_SECONDS"))
                self.reconciler = ReconcileLoop(self.bridge, quiet_s=quiet_s)
            self.reconciler.start()
        if self.root is not None:
            _mark_live(self.root)

    def pending(self) -> int:
        """Tasks queued or running on every transport."""
        return self.dispatcher.pending() + (self.legacy.pending() if self.legacy else 0)

    def run_until_idle(self, *, until: float | None = None) -> int:
        """Deliver on a virtual clock until no transport has anything due (before ``until``)."""
        total = 0
        while True:
            done = self.dispatcher.run_until_idle(until=until)
            if self.legacy is not None:
                done += self.legacy.run_until_idle(until=until)
            total += done
            if done == 0:
                return total

    def close(self) -> None:
        if self.root is not None:
            _unmark_live(self.root)
        if self.reconciler is not None:
            self.reconciler.stop()
        self.dispatcher.stop()
        if self.legacy is not None:
            self.legacy.stop()
        self.store.close()


def embedded(
    data_dir: str | Path,
    *,
    settings: Settings | None = None,
    steps: Mapping[str, StepFn] | None = None,
    clock: Clock | None = None,
    store: EventStore | None = None,
    notify_filter: Callable[[str, int], bool] | None = None,
    deliver_wrapper: Callable[[Any], Any] | None = None,
    options: Mapping[str, Any] | None = None,
    dispatch_follow_ups: bool = True,
    record_start_after_s: float = RECORD_START_AFTER_S,
    pipelines: Pipelines | None = None,
    partition: Partition = WHOLE,
) -> Runtime:
    """The embedded default: SQLite events, local artifacts, in-process Cloud Tasks semantics.

    ``dispatch_follow_ups`` false: the bridge dispatches what a result unblocks only when it is
    notified, as in the cloud; ``record_start_after_s``: see ``TaskEndpoint``; ``pipelines``:
    the pipeline versions courses may be pinned to (default: those stored in ``schemas/``),
    its current one for new courses; ``partition``: this process's share of the courses and of
    each queue's limits when several processes run on one store (``bridge/partition.py``)."""
    cfg = settings or Settings.from_env()
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    clk = clock or SystemClock()
    registry = pipelines or default_pipelines()
    pipe = registry.latest
    events = store or open_store(cfg, root)
    artifacts = LocalArtifacts(root / "artifacts", buckets=cfg.local_buckets)
    secret = cfg.get("COURSEGEN_TASK_SECRET").encode() or secrets.token_bytes(32)
    services = StepServices(
        artifacts=artifacts, settings=cfg, scratch=root / "scratch", options=dict(options or {})
    )
    notifications: list[tuple[str, int]] = []
    # the cycle (see the module docstring): the transports reach the endpoint through these
    endpoint: Late[TaskEndpoint] = Late("the task endpoint of the local queue")
    legacy_run: Late[Callable[[Mapping[str, Any]], Answer]] = Late("the legacy step runner")

    def deliver(
        request: TaskRequest, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str]]:
        answer = endpoint.get().handle(headers, body, url=f"local://{request.step}")
        return answer.status, answer.headers

    def deliver_later(
        request: TaskRequest, headers: Mapping[str, str], body: bytes, reply: Reply
    ) -> None:
        def answered(answer: Answer) -> None:
            reply((answer.status, answer.headers))

        endpoint.get().handle_later(headers, body, answered, url=f"local://{request.step}")

    dispatcher = LocalDispatcher(
        # every version's queues (a pinned course's task goes to its own), this process's share
        partition.share(registry.merged),
        deliver_wrapper(deliver) if deliver_wrapper else deliver,
        clk,
        signer=lambda body: sign(secret, body, int(clk.now() + TOKEN_TTL_S)),
        # worker threads leave the answer to the fsync that covers it (group commit); a
        # wrapper (a test's, the simulation's) sees every delivery on the synchronous path
        deliver_later=None if deliver_wrapper else deliver_later,
    )
    legacy = None
    legacy_dispatcher: Dispatcher = LegacyDisabled(dispatcher)
    if cfg.get_bool("COURSEGEN_LEGACY_TRIGGER_ENABLED"):
        legacy = LocalStepDocuments(
            lambda document: legacy_run.get()(document), clk, registry.merged
        )
        legacy_dispatcher = LegacyTriggerDispatcher(legacy, clk, delayed=dispatcher)
    # one per runtime: its bridge and endpoint fold each head once, reusing unchanged tasks
    states = StateCache(encode=orjson.dumps)
    bridge = Bridge(
        store=events,
        dispatcher=dispatcher,
        pipeline=pipe,
        clock=clk,
        rollout_percent=cfg.get_int("COURSEGEN_ROLLOUT_PERCENT"),
        legacy_dispatcher=legacy_dispatcher,
        dispatch_follow_ups=dispatch_follow_ups,
        pipelines=registry,
        admission=admission_for(cfg.get("COURSEGEN_TENANT_LIMITS"), events, clk),
        states=states,
        partition=partition,
    )

    def notify(course_id: str, version: int) -> None:
        notifications.append((course_id, version))
        if notify_filter is None or notify_filter(course_id, version):
            bridge.advance(course_id, version)

    built = TaskEndpoint(
        store=events,
        steps=steps if steps is not None else real_steps(),
        pipeline=registry.merged,  # the steps and queues of every version
        verify=HmacVerifier(secret, clk.now),
        notify=notify,
        services=services,
        now=clk.now,
        follow=bridge,  # a result and the tasks it unblocks: one transaction
        record_start_after_s=record_start_after_s,
        states=states,
    )
    endpoint.set(built)  # the cycle closes here, before anything is delivered
    legacy_run.set(step_runner(built))
    return Runtime(
        cfg,
        events,
        clk,
        pipe,
        built,
        dispatcher,
        bridge,
        artifacts,
        notifications=notifications,
        legacy=legacy,
        root=root,
    )


LIVE_DIR = "processes"  # in the data folder: one marker per running process (``start``)


def _marker(root: Path, pid: int) -> Path:
    return root / LIVE_DIR / f"{pid}.json"


def _mark_live(root: Path) -> None:
    import json
    import os
    import sys
    import time

    marker = _marker(root, os.getpid())
    marker.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(Path(sys.argv[0]).name.split()[:1] + sys.argv[1:2])
    marker.write_text(json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}))


def _unmark_live(root: Path) -> None:
    import os

    _marker(root, os.getpid()).unlink(missing_ok=True)


def live_processes(root: Path) -> list[dict[str, Any]]:
    """The processes running the embedded runtime on ``root`` (each ``Runtime.start`` leaves a
    marker; a marker whose process is gone, after a crash, is ignored)."""
    import json
    import os

    found = []
    for marker in sorted((root / LIVE_DIR).glob("*.json")):
        try:
            info = json.loads(marker.read_text())
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable, or its process ended without closing
        found.append(info)
    return found
