"""Cloud runtime wiring from Settings: Firestore, Cloud Tasks, Pub/Sub, GCS and OIDC together."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bridge.core import Bridge
from bridge.dispatch import Dispatcher, TaskRequest
from bridge.dispatch.firestore_trigger import (
    FirestoreStepDocuments,
    LegacyDisabled,
    LegacyTriggerDispatcher,
)
from bridge.pubsub import PubSubNotifier, make_publisher
from bridge.runtime.clock import SystemClock
from bridge.runtime.stores import open_store
from bridge.settings import Settings
from bridge.tenancy import admission_for
from handlers.artifacts import ArtifactStore, LocalArtifacts
from handlers.auth import HmacVerifier, allow_all, sign
from handlers.endpoint import TaskEndpoint, Verifier
from handlers.registry import StepFn, real_steps
from handlers.services import StepServices
from statemachine.pipeline import Pipeline, default_pipelines
from statemachine.ports import Clock, EventStore
from statemachine.state import StateCache

log = logging.getLogger("coursegen.cloud")

# A task token outlives every retry a queue makes (the longest maxRetryDuration is 2 h).
TOKEN_TTL_S = 24 * 3600


@dataclass
class CloudRuntime:
    settings: Settings
    store: EventStore
    clock: Clock
    pipeline: Pipeline
    dispatcher: Dispatcher
    notifier: PubSubNotifier
    artifacts: ArtifactStore
    verify: Verifier  # callers of the task endpoint and of the bridge's routes
    endpoint: TaskEndpoint
    bridge: Bridge

    def dead_letter(
        self, data: bytes, reason: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        self.notifier.dead_letter(data, reason, attributes)

    @property
    def quiet_s(self) -> float:
        return float(self.settings.get_int("COURSEGEN_RECONCILE_QUIET_SECONDS"))

    def close(self) -> None:
        self.store.close()


class NoDispatcher:
    """The dispatcher of a service that runs steps only (COURSEGEN_DISPATCHER is not set)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def dispatch(self, request: TaskRequest) -> None:
        raise RuntimeError(
            f"this service does not dispatch tasks (COURSEGEN_DISPATCHER={self.kind!r}); "
            "the bridge runs with COURSEGEN_DISPATCHER=cloudtasks"
        )


def cloud_runtime(
    settings: Settings,
    *,
    steps: Mapping[str, StepFn] | None = None,
    clock: Clock | None = None,
    store: EventStore | None = None,
    tasks_client: Any = None,
    publisher: Any = None,
    verify: Verifier | None = None,
    task_signer: Callable[[bytes], str] | None = None,
    scratch: str | Path | None = None,
    firestore_client: Any = None,
) -> CloudRuntime:
    """Everything a cloud service needs, built from ``settings``; keyword arguments replace a
    part (tests pass emulator clients, synthetic steps, a different verifier, the Firestore
    client of the legacy transport's ``legacy_steps``)."""
    cfg = settings
    project = cfg.get("GOOGLE_CLOUD_PROJECT") or None
    clk = clock or SystemClock()
    registry = default_pipelines()
    pipe = registry.latest
    root = Path(scratch or Path(tempfile.gettempdir()) / "coursegen")
    events = store or open_store(cfg, project=project)
    artifacts = _artifacts(cfg, root)
    notifier = PubSubNotifier(
        publisher if publisher is not None else make_publisher(),
        project or "",
        cfg.get("COURSEGEN_EVENTS_TOPIC"),
        cfg.get("COURSEGEN_DEAD_LETTER_TOPIC"),
    )
    check = verify or verifier(cfg, clk)
    dispatcher = _dispatcher(cfg, project, tasks_client, task_signer or _hmac_signer(cfg, clk))
    # one per runtime: its bridge and endpoint fold each head once, reusing unchanged tasks
    states = StateCache(encode=orjson.dumps)
    bridge = Bridge(
        store=events,
        dispatcher=dispatcher,
        pipeline=pipe,
        clock=clk,
        rollout_percent=cfg.get_int("COURSEGEN_ROLLOUT_PERCENT"),
        legacy_dispatcher=_legacy(cfg, project, events, dispatcher, clk, firestore_client),
        dispatch_follow_ups=not isinstance(dispatcher, NoDispatcher),
        pipelines=registry,
        admission=admission_for(cfg.get("COURSEGEN_TENANT_LIMITS"), events, clk),
        states=states,
    )
    endpoint = TaskEndpoint(
        store=events,
        steps=steps if steps is not None else real_steps(),
        pipeline=registry.merged,  # the steps and queues of every version
        verify=check,
        notify=notifier.notify,
        services=StepServices(artifacts=artifacts, settings=cfg, scratch=root / "scratch"),
        now=clk.now,
        only_step=cfg.get("COURSEGEN_STEP") or None,
        follow=bridge,  # a result and the tasks it unblocks: one transaction
        states=states,
    )
    return CloudRuntime(
        cfg, events, clk, pipe, dispatcher, notifier, artifacts, check, endpoint, bridge
    )


def verifier(cfg: Settings, clock: Clock) -> Verifier:
    """The caller check COURSEGEN_AUTH names: oidc (cloud), hmac (local), none (emulators)."""
    kind = cfg.get("COURSEGEN_AUTH")
    if kind == "oidc":
        from handlers.oidc import OidcVerifier

        return OidcVerifier(
            cfg.get("COURSEGEN_OIDC_AUDIENCE") or None, cfg.get_list("COURSEGEN_ALLOWED_INVOKERS")
        )
    if kind == "hmac":
        secret = cfg.get("COURSEGEN_TASK_SECRET").encode()
        if not secret:
            raise ValueError("COURSEGEN_AUTH=hmac needs COURSEGEN_TASK_SECRET")
        return HmacVerifier(secret, clock.now)
    if kind == "none":
        log.warning("COURSEGEN_AUTH=none: every caller is accepted (emulators only)")
        return allow_all
    raise ValueError(f"COURSEGEN_AUTH must be oidc, hmac or none, not {kind!r}")


def tasks_client_for(emulator_host: str | None = None) -> Any:
    """A Cloud Tasks client: plain gRPC to an emulator at ``host:port``, else the real API."""
    from google.cloud.tasks_v2 import CloudTasksClient

    if emulator_host:
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(emulator_host)
        return CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    return CloudTasksClient()


def _artifacts(cfg: Settings, root: Path) -> ArtifactStore:
    uri = cfg.get("COURSEGEN_ARTIFACTS")
    if uri.startswith("gs://"):
        from handlers.gcs import GcsArtifacts

        return GcsArtifacts(uri, root / "scratch")
    folder = uri or Path(cfg.get("COURSEGEN_DATA_DIR")) / "artifacts"
    return LocalArtifacts(folder, buckets=cfg.local_buckets)


def _dispatcher(
    cfg: Settings, project: str | None, client: Any, signer: Callable[[bytes], str] | None
) -> Dispatcher:
    kind = cfg.get("COURSEGEN_DISPATCHER")
    if kind != "cloudtasks":
        return NoDispatcher(kind)
    if not project:
        raise ValueError("COURSEGEN_DISPATCHER=cloudtasks needs GOOGLE_CLOUD_PROJECT")
    from bridge.dispatch.cloudtasks import CloudTasksDispatcher

    urls = cfg.get_json("COURSEGEN_STEP_URLS") or {}
    if not isinstance(urls, dict):
        raise ValueError("COURSEGEN_STEP_URLS must be a JSON object of step name to URL")
    return CloudTasksDispatcher(
        client if client is not None else tasks_client_for(_tasks_emulator(cfg)),
        project,
        cfg.get("COURSEGEN_REGION"),
        urls,
        cfg.get("COURSEGEN_TASKS_INVOKER_SA"),
        cfg.get("COURSEGEN_OIDC_AUDIENCE") or None,
        signer=signer,
    )


def _hmac_signer(cfg: Settings, clock: Clock) -> Callable[[bytes], str] | None:
    """With a local task secret (emulators: no OIDC), tasks carry its HMAC token instead."""
    secret = cfg.get("COURSEGEN_TASK_SECRET").encode()
    if not secret:
        return None
    return lambda body: sign(secret, body, int(clock.now() + TOKEN_TTL_S))


def _legacy(
    cfg: Settings,
    project: str | None,
    events: EventStore,
    main: Dispatcher,
    clock: Clock,
    client: Any,
) -> Dispatcher:
    """The legacy transport: step documents in Firestore while the legacy trigger is enabled;
    once it is disabled, legacy-variant courses fall back to the main transport (logged)."""
    if not cfg.get_bool("COURSEGEN_LEGACY_TRIGGER_ENABLED") or isinstance(main, NoDispatcher):
        return LegacyDisabled(main)
    from statemachine.store.firestore import FirestoreStore

    if client is None and isinstance(events, FirestoreStore):
        client = events.client
    if client is None:
        from google.cloud import firestore

        client = firestore.Client(project=project)
    return LegacyTriggerDispatcher(FirestoreStepDocuments(client), clock, delayed=main)


def _tasks_emulator(cfg: Settings) -> str | None:
    # Read like FIRESTORE_EMULATOR_HOST: the real service never sets it.
    try:
        return cfg.get("CLOUD_TASKS_EMULATOR_HOST") or None
    except KeyError:  # not (yet) a declared setting
        return os.environ.get("CLOUD_TASKS_EMULATOR_HOST") or None
