"""The deployed topology as terraform/ lays it out, for one machine: what cloud-local creates.

Topics, push and hold subscriptions (modules/pubsub), queues (modules/queues, from
schemas/pipeline.json), the bucket (modules/storage), the functions of main.py with the
environment Terraform gives each (modules/services) and the reconcile job (modules/scheduler).
Values are those of ``terraform/envs/dev`` with the modules' defaults;
tests/terraform/test_cloud_local_env.py parses terraform/ and fails when the two drift.

Where a value cannot be the cloud's on one machine, ``LOCAL_DIFFERENCES`` says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import schemas

Doc = Mapping[str, Any]  # schemas/pipeline.json, as Terraform's jsondecode reads it

NAME_PREFIX = "coursegen"  # modules/coursegen var.name_prefix
REGION = "europe-west1"  # envs/dev var.region
AI_PROVIDER = "offline"  # envs/dev var.ai_provider
MAX_DELIVERY_ATTEMPTS = 5  # envs/dev: max_delivery_attempts = 5
ACK_DEADLINE_S = 60  # modules/pubsub var.ack_deadline_seconds
PUSH_MIN_BACKOFF_S = 10  # modules/pubsub var.push_min_backoff ("10s")
PUSH_MAX_BACKOFF_S = 600  # modules/pubsub var.push_max_backoff ("600s")
RECONCILE_EVERY_S = 300  # modules/coursegen var.reconcile_schedule "*/5 * * * *"
RECONCILE_QUIET_S = 300  # modules/coursegen var.reconcile_quiet_seconds
TENANT_LIMITS = "{}"  # modules/coursegen var.tenant_limits: no limit
MAX_VIDEO_BYTES = 4294967296  # modules/coursegen var.max_video_bytes
MAX_VIDEO_SECONDS = 14400  # modules/coursegen var.max_video_seconds
ROLLOUT_PERCENT = 100  # modules/coursegen var.rollout_percent
LEGACY_TRIGGER_ENABLED = False  # envs/dev var.legacy_trigger_enabled (no legacy function)

# modules/pubsub local.sources: topic -> the bridge route its push subscription calls.
SOURCES: Mapping[str, str] = {
    "course-requests": "/pubsub/course-requests",
    "course-events": "/pubsub/course-events",
}
RECONCILE_PATH = "/reconcile"  # modules/scheduler http_target.uri
RECONCILE_BODY = {"source": "cloud-scheduler"}

# Environment variables whose local value necessarily differs from the cloud's, and why.
LOCAL_DIFFERENCES: Mapping[str, str] = {
    "COURSEGEN_AUTH": "oidc in the cloud; the emulators mint no OIDC tokens: the steps check "
    "the local HMAC token (hmac), the bridge accepts the emulator's unsigned pushes (none)",
    "COURSEGEN_STEP_URLS": "the step functions' run.app URIs; here their loopback ports",
    "COURSEGEN_TASKS_INVOKER_SA": "the invoker account Cloud Tasks mints OIDC tokens for; empty "
    "here, where each task carries an HMAC token instead (CloudTasksDispatcher's signer)",
    "COURSEGEN_ALLOWED_INVOKERS": "service-account emails: the same names Terraform gives the "
    "accounts, in the local project (unused while COURSEGEN_AUTH is not oidc)",
    "GEMINI_API_KEY": "a Secret Manager secret in the cloud; empty here (offline provider)",
    "OPENAI_API_KEY": "a Secret Manager secret in the cloud; empty here (offline provider)",
}
SECRET_ENV = ("GEMINI_API_KEY", "OPENAI_API_KEY")  # modules/services local.secret_env


@dataclass(frozen=True, kw_only=True, slots=True)
class Subscription:
    name: str
    topic: str
    push_path: str | None  # None: a pull subscription
    ack_deadline_s: int
    dead_letter_topic: str | None = None
    max_delivery_attempts: int = 0
    min_backoff_s: int = 0
    max_backoff_s: int = 0
    retain_acked: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Function:
    """One Cloud Function of main.py: ``name`` is its local process name, ``service`` the
    function's name in the cloud; ``env`` is what Terraform sets, ``local_env`` what only the
    local stack adds (emulator hosts, the local secrets)."""

    name: str
    service: str
    target: str
    signature_type: str
    concurrency: int
    env: Mapping[str, str]
    local_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Place:
    """Where the stack runs: project, bucket, the emulator hosts and each function's URL."""

    project: str
    region: str
    emulators: Mapping[str, str]  # FIRESTORE_EMULATOR_HOST ... STORAGE_EMULATOR_HOST
    urls: Mapping[str, str]  # function name -> http://127.0.0.1:PORT
    task_secret: str
    operator_token: str
    reconcile_quiet_s: int = RECONCILE_QUIET_S

    @property
    def bucket(self) -> str:
        return artifacts_bucket(self.project)


def artifacts_bucket(project: str) -> str:
    """modules/storage: ``${project_id}-${name_prefix}-artifacts``."""
    return f"{project}-{NAME_PREFIX}-artifacts"


def service_account(project: str, kind: str) -> str:
    """modules/iam: account ``${name_prefix}-${kind}`` of the project."""
    return f"{NAME_PREFIX}-{kind}@{project}.iam.gserviceaccount.com"


def step_service(step: str) -> str:
    """modules/services local.step_function_names."""
    return f"{NAME_PREFIX}-{step.replace('_', '-')}"


def topics() -> tuple[str, ...]:
    """The source topics and a dead-letter topic for each (modules/pubsub)."""
    return (*SOURCES, *(f"{t}-dead-letter" for t in SOURCES))


def subscriptions() -> tuple[Subscription, ...]:
    """``<topic>-to-bridge`` push subscriptions and ``<topic>-dead-letter-hold`` pulls."""
    push = tuple(
        Subscription(
            name=f"{topic}-to-bridge",
            topic=topic,
            push_path=path,
            ack_deadline_s=ACK_DEADLINE_S,
            dead_letter_topic=f"{topic}-dead-letter",
            max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
            min_backoff_s=PUSH_MIN_BACKOFF_S,
            max_backoff_s=PUSH_MAX_BACKOFF_S,
        )
        for topic, path in SOURCES.items()
    )
    hold = tuple(
        Subscription(
            name=f"{topic}-dead-letter-hold",
            topic=f"{topic}-dead-letter",
            push_path=None,
            ack_deadline_s=60,
            retain_acked=True,
        )
        for topic in SOURCES
    )
    return push + hold


def _common(place: Place) -> dict[str, str]:
    """modules/services local.env_common."""
    return {
        "COURSEGEN_STORE": "firestore",
        "COURSEGEN_ARTIFACTS": f"gs://{place.bucket}/artifacts",
        "GOOGLE_CLOUD_PROJECT": place.project,
        "COURSEGEN_AUTH": "oidc",  # replaced per function below (LOCAL_DIFFERENCES)
        "COURSEGEN_OIDC_AUDIENCE": "",
        "COURSEGEN_EVENTS_TOPIC": "course-events",
    }


def pipeline_doc() -> Doc:
    """schemas/pipeline.json with every stored version's queues and steps, as Terraform's
    modules read it (``schemas.deployed_pipeline``)."""
    return schemas.deployed_pipeline()


def bridge_function(place: Place, doc: Doc) -> Function:
    """env_common + env_bridge + the rollout module's bridge_env."""
    invokers = [service_account(place.project, k) for k in ("pubsub-push", "scheduler")]
    env = _common(place) | {
        "COURSEGEN_AUTH": "none",
        "COURSEGEN_DISPATCHER": "cloudtasks",
        "COURSEGEN_REGION": place.region,
        "COURSEGEN_STEP_URLS": json.dumps({s: place.urls[s] for s in doc["steps"]}),
        "COURSEGEN_TASKS_INVOKER_SA": "",
        "COURSEGEN_ALLOWED_INVOKERS": ",".join(invokers),
        "COURSEGEN_DEAD_LETTER_TOPIC": "course-requests-dead-letter",
        "COURSEGEN_RECONCILE_QUIET_SECONDS": str(place.reconcile_quiet_s),
        "COURSEGEN_TENANT_LIMITS": TENANT_LIMITS,
        "COURSEGEN_ROLLOUT_PERCENT": str(ROLLOUT_PERCENT),
        "COURSEGEN_LEGACY_TRIGGER_ENABLED": "true" if LEGACY_TRIGGER_ENABLED else "false",
    }
    local = dict(place.emulators) | {
        # signs each task with the HMAC token the steps check (bridge.runtime.cloud)
        "COURSEGEN_TASK_SECRET": place.task_secret,
        "COURSEGEN_OPERATOR_TOKEN": place.operator_token,
    }
    return Function(
        name="bridge",
        service=f"{NAME_PREFIX}-bridge",
        target="bridge",
        signature_type="http",
        concurrency=20,  # modules/services var.bridge_resources.concurrency
        env=env,
        local_env=local,
    )


def step_function(place: Place, doc: Doc, step: str) -> Function:
    """env_common + env_step + {COURSEGEN_STEP}, + env_entry_step and the secrets by kind."""
    spec = doc["steps"][step]
    env = _common(place) | {
        "COURSEGEN_AUTH": "hmac",
        "COURSEGEN_STEP": step,
        "COURSEGEN_PROVIDER": AI_PROVIDER,
        "COURSEGEN_ALLOWED_INVOKERS": service_account(place.project, "invoker"),
    }
    if not spec["after"]:  # local.entry_steps
        env |= {
            "COURSEGEN_FETCH_ALLOWED_HOSTS": "",
            "COURSEGEN_MAX_VIDEO_BYTES": str(MAX_VIDEO_BYTES),
            "COURSEGEN_MAX_VIDEO_SECONDS": str(MAX_VIDEO_SECONDS),
        }
    if "provider" in spec:  # local.ai_steps
        env |= {name: "" for name in SECRET_ENV}
    local = dict(place.emulators) | {"COURSEGEN_TASK_SECRET": place.task_secret}
    return Function(
        name=step,
        service=step_service(step),
        target="run_task",
        signature_type="http",
        concurrency=int(spec["resources"]["concurrency"]),
        env=env,
        local_env=local,
    )


def functions(place: Place, doc: Doc | None = None) -> tuple[Function, ...]:
    """The bridge and one function per step (no legacy function: its trigger is off)."""
    pipeline = doc if doc is not None else pipeline_doc()
    steps = tuple(step_function(place, pipeline, s) for s in pipeline["steps"])
    return (bridge_function(place, pipeline), *steps)


def queues(doc: Doc | None = None) -> dict[str, dict[str, Any]]:
    """Each queue's Cloud Tasks ``Queue`` fields, as modules/queues sets them (without name)."""
    pipeline = doc if doc is not None else pipeline_doc()
    out: dict[str, dict[str, Any]] = {}
    for name, q in pipeline["queues"].items():
        r, limits = q["retry"], q["rateLimits"]
        out[name] = {
            "retry_config": {
                "max_attempts": r["maxAttempts"],
                "min_backoff": f"{r['minBackoffSeconds']}s",
                "max_backoff": f"{r['maxBackoffSeconds']}s",
                "max_doublings": r["maxDoublings"],
                "max_retry_duration": f"{r['maxRetryDurationSeconds']}s",
            },
            "rate_limits": {
                "max_dispatches_per_second": limits["maxDispatchesPerSecond"],
                "max_concurrent_dispatches": limits["maxConcurrentDispatches"],
            },
        }
    return out
