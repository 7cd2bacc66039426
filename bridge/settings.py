"""Runtime settings: every option the code reads from the environment, in one table.

Each setting names the environment variable it mirrors, its default, which deployed
services read it ("bridge", "steps", or a step name), and what values it allows. Terraform's
consistency test reads ``SETTINGS`` so that every variable the code reads is set for the
services that read it.

Values are checked once, when ``Settings.from_env`` takes the snapshot at start-up: a bad
value (``COURSEGEN_MAX_VIDEO_BYTES=4GB``) stops the process with a ``SettingError`` naming the
variable, the value and what is allowed, instead of failing every task that reads it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Check = Callable[[str], bool]


class SettingError(ValueError):
    """A setting's value is not one it allows: ``env``, ``value`` and ``allowed`` say which."""

    def __init__(self, env: str, value: str, allowed: str) -> None:
        self.env = env
        self.value = value
        self.allowed = allowed
        super().__init__(f"{env}={value!r} is not allowed: {allowed}")


def _any(value: str) -> bool:
    return True


def _integer(low: int, high: int | None = None) -> Check:
    def check(value: str) -> bool:
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            return False
        number = int(text)
        return number >= low and (high is None or number <= high)

    return check


def _positive_number(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return number > 0 and number != float("inf")


def _one_of(*choices: str, case: bool = True) -> Check:
    def check(value: str) -> bool:
        return (value if case else value.upper()) in choices

    return check


def _json_object(value: str) -> bool:
    try:
        return isinstance(json.loads(value or "{}"), dict)
    except ValueError:
        return False


def _tenant_limits(value: str) -> bool:
    from bridge.tenancy import TenantLimits  # parsing lives with the ledger that uses it

    try:
        TenantLimits.parse(value)
    except ValueError:
        return False
    return True


_TRUE = {"1", "true", "yes", "on"}
_BOOLEANS = _TRUE | {"0", "false", "no", "off", ""}


def _boolean(value: str) -> bool:
    return value.strip().lower() in _BOOLEANS


@dataclass(frozen=True, slots=True)
class Setting:
    env: str
    default: str
    doc: str
    services: tuple[str, ...] = ("bridge", "steps")
    secret: bool = False
    cloud: bool = True  # set by Terraform in the cloud deployment
    allowed: str = ""  # what ``check`` accepts, in words (empty: anything)
    check: Check = _any


_AI_STEPS = (
    "transcribe_chunk",
    "analyze_video",
    "analyze_frames",
    "generate_structure",
    "add_interactivity",
)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "COURSEGEN_DATA_DIR", ".coursegen", "local data folder (embedded default)", cloud=False
    ),
    Setting(
        "COURSEGEN_STORE",
        "sqlite",
        "event store: memory | sqlite | firestore",
        allowed="memory, sqlite or firestore",
        check=_one_of("memory", "sqlite", "firestore"),
    ),
    Setting(
        "COURSEGEN_SQLITE_SYNCHRONOUS",
        "FULL",
        "SQLite durability: FULL (fsync per commit) or NORMAL",
        cloud=False,
        allowed="FULL, NORMAL or EXTRA (any case)",
        check=_one_of("FULL", "NORMAL", "EXTRA", case=False),
    ),
    Setting(
        "COURSEGEN_DISPATCHER",
        "local",
        "task transport: local | cloudtasks | firestore_trigger",
        ("bridge",),
        allowed="local, cloudtasks, firestore_trigger or empty (a service that runs steps only)",
        check=_one_of("", "local", "cloudtasks", "firestore_trigger"),
    ),
    Setting("COURSEGEN_ARTIFACTS", "", "artifact storage: a folder, or gs://bucket/prefix"),
    Setting("GOOGLE_CLOUD_PROJECT", "", "Google Cloud project id"),
    Setting("COURSEGEN_REGION", "europe-west1", "region of the Cloud Tasks queues", ("bridge",)),
    Setting(
        "COURSEGEN_STEP_URLS",
        "{}",
        "JSON map of step name to the HTTPS URL of its service",
        ("bridge",),
        allowed="a JSON object of step name to URL",
        check=_json_object,
    ),
    Setting(
        "COURSEGEN_TASKS_INVOKER_SA",
        "",
        "service account whose OIDC token Cloud Tasks attaches",
        ("bridge",),
    ),
    Setting(
        "COURSEGEN_AUTH",
        "hmac",
        "how the task endpoint authenticates callers: hmac | oidc | none",
        allowed="hmac, oidc or none",
        check=_one_of("hmac", "oidc", "none"),
    ),
    Setting(
        "COURSEGEN_OIDC_AUDIENCE",
        "",
        "audience the endpoints expect in OIDC tokens (default: request URL)",
    ),
    Setting(
        "COURSEGEN_ALLOWED_INVOKERS", "", "comma-separated service-account emails allowed to call"
    ),
    Setting(
        "COURSEGEN_TASK_SECRET", "", "HMAC secret for local task tokens", secret=True, cloud=False
    ),
    Setting("COURSEGEN_EVENTS_TOPIC", "course-events", "Pub/Sub topic for course notifications"),
    Setting(
        "COURSEGEN_DEAD_LETTER_TOPIC",
        "course-requests-dead-letter",
        "Pub/Sub topic for rejected messages",
        ("bridge",),
    ),
    Setting(
        "COURSEGEN_ROLLOUT_PERCENT",
        "100",
        "percent of new courses on the Cloud Tasks transport",
        ("bridge",),
        allowed="a whole number from 0 to 100",
        check=_integer(0, 100),
    ),
    Setting(
        "COURSEGEN_LEGACY_TRIGGER_ENABLED",
        "false",
        "whether the legacy Firestore-trigger transport runs",
        ("bridge",),
        allowed="true or false (also 1/0, yes/no, on/off)",
        check=_boolean,
    ),
    Setting(
        "COURSEGEN_OPERATOR_TOKEN",
        "",
        "bearer token of the bridge's /operator/ routes when it runs locally (cloud: OIDC)",
        ("bridge",),
        secret=True,
        cloud=False,
    ),
    Setting(
        "COURSEGEN_RECONCILE_QUIET_SECONDS",
        "300",
        "a non-terminal course quiet this long is advanced",
        ("bridge",),
        allowed="a whole number of seconds, 0 or more",
        check=_integer(0),
    ),
    Setting(
        "COURSEGEN_TENANT_LIMITS",
        "{}",
        "JSON fair shares: {default: {maxActive, dailyAiUsd}, tenants: {NAME: {...}},"
        " maxActiveTotal} (README: Tenants and fair shares)",
        ("bridge",),
        allowed="a JSON object as bridge/tenancy.py describes",
        check=_tenant_limits,
    ),
    Setting("COURSEGEN_STEP", "", "the step a per-step service serves (empty: all)", ("steps",)),
    Setting(
        "COURSEGEN_PROVIDER",
        "",
        "AI provider for every AI step: offline | gemini | openai | local",
        ("steps",),
        allowed="offline, gemini, openai, local or empty (the step's default)",
        check=_one_of("", "offline", "gemini", "openai", "local"),
    ),
    Setting(
        "COURSEGEN_LOCAL_ROOTS",
        "",
        "os.pathsep-separated folders local video paths may come from",
        ("steps",),
        cloud=False,
    ),
    Setting(
        "COURSEGEN_LOCAL_BUCKETS",
        "",
        "comma-separated bucket=folder pairs: gs://bucket/x is read from folder/x (laptop only)",
        ("steps",),
        cloud=False,
    ),
    Setting(
        "COURSEGEN_FETCH_ALLOWED_HOSTS",
        "",
        "comma-separated hosts exempt from the SSRF guard",
        ("prepare_video",),
    ),
    Setting(
        "COURSEGEN_MAX_VIDEO_BYTES",
        str(4 * 1024**3),
        "largest accepted video",
        ("prepare_video",),
        allowed=f"a whole number of bytes, 1 or more (4 GiB is {4 * 1024**3})",
        check=_integer(1),
    ),
    Setting(
        "COURSEGEN_MAX_VIDEO_SECONDS",
        str(4 * 3600),
        "longest accepted video",
        ("prepare_video",),
        allowed="a whole number of seconds, 1 or more",
        check=_integer(1),
    ),
    Setting(
        "CLOUD_TASKS_EMULATOR_HOST",
        "",
        "host:port of a Cloud Tasks emulator (tests only)",
        ("bridge",),
        cloud=False,
    ),
    Setting(
        "GEMINI_API_KEY",
        "",
        "Gemini API key (Secret Manager in the cloud)",
        (
            "transcribe_chunk",
            "analyze_video",
            "analyze_frames",
            "generate_structure",
            "add_interactivity",
        ),
        secret=True,
    ),
    Setting(
        "OPENAI_API_KEY",
        "",
        "OpenAI API key (Secret Manager in the cloud)",
        (
            "transcribe_chunk",
            "analyze_video",
            "analyze_frames",
            "generate_structure",
            "add_interactivity",
        ),
        secret=True,
    ),
    # AI models and limits: local-only (cloud=False) until Terraform sets them for the AI steps;
    # their defaults are what the cloud runs.
    Setting("COURSEGEN_GEMINI_MODEL", "gemini-2.5-flash", "Gemini model", _AI_STEPS, cloud=False),
    Setting(
        "COURSEGEN_OPENAI_MODEL",
        "gpt-4.1-mini",
        "OpenAI chat model (structured outputs, image input)",
        _AI_STEPS,
        cloud=False,
    ),
    Setting(
        "COURSEGEN_OPENAI_TRANSCRIBE_MODEL",
        "whisper-1",
        "OpenAI transcription model (must support verbose_json segments)",
        ("transcribe_chunk",),
        cloud=False,
    ),
    Setting(
        "COURSEGEN_AI_TIMEOUT_S",
        "300",
        "timeout of one AI HTTP request, seconds",
        _AI_STEPS,
        cloud=False,
        allowed="a number of seconds greater than 0",
        check=_positive_number,
    ),
    Setting(
        "COURSEGEN_AI_MAX_RETRIES",
        "3",
        "SDK retries of one AI request (429, 5xx, network) before the queue's own retry",
        _AI_STEPS,
        cloud=False,
        allowed="a whole number, 0 or more",
        check=_integer(0),
    ),
    Setting(
        "COURSEGEN_AI_PRICES",
        "{}",
        "JSON price overrides per model (handlers/ai/pricing.py)",
        _AI_STEPS,
        cloud=False,
        allowed="a JSON object of model name to prices",
        check=_json_object,
    ),
    Setting(
        "COURSEGEN_GEMINI_BASE_URL",
        "",
        "Gemini API base URL (a local stub or proxy; empty: Google)",
        _AI_STEPS,
        cloud=False,
    ),
    Setting(
        "COURSEGEN_OPENAI_BASE_URL",
        "",
        "OpenAI API base URL (a local stub or proxy; empty: api.openai.com)",
        _AI_STEPS,
        cloud=False,
    ),
    # The optional local model (COURSEGEN_PROVIDER=local): laptop only, never in the cloud.
    Setting(
        "COURSEGEN_LOCAL_MODEL_URL",
        "http://127.0.0.1:8080/v1",
        "OpenAI-compatible server of the local model, on loopback (llama_cpp.server)",
        _AI_STEPS,
        cloud=False,
    ),
    Setting(
        "COURSEGEN_LOCAL_MODEL",
        "qwen2.5-coder-0.5b-instruct-q4_k_m",
        "model name the local server is asked for (its --model_alias)",
        _AI_STEPS,
        cloud=False,
    ),
    Setting(
        "COURSEGEN_LOCAL_MODEL_MAX_TOKENS",
        "1024",
        "most tokens the local model may write for one lesson's questions",
        _AI_STEPS,
        cloud=False,
        allowed="a whole number, 1 or more",
        check=_integer(1),
    ),
    # The offline transcription (handlers/media/speech.py): the bundled tiny.en unless a model
    # folder is named (the optional whisper-base: coursegen model assemble whisper-base).
    Setting(
        "COURSEGEN_WHISPER_MODEL_DIR",
        "",
        "CTranslate2 Whisper model folder for offline transcription (empty: the bundled tiny.en)",
        ("transcribe_chunk",),
        cloud=False,
    ),
    Setting(
        "COURSEGEN_SLIDE_BIASING",
        "on",
        "decode each slide's range again with its text as Whisper's prompt, kept where the "
        "model prefers it (pipeline version 5 on, offline Whisper only; off: stitch only)",
        ("transcribe",),
        cloud=False,
        allowed="on or off (1/0, true/false, yes/no)",
        check=_boolean,
    ),
    Setting(
        "COURSEGEN_WHISPER_BEAM_SIZE",
        "",
        "beam size of offline transcription (empty: greedy, tiny.en's best; 5 for whisper-base)",
        ("transcribe_chunk",),
        cloud=False,
        allowed="empty, or a whole number from 1 to 10",
        check=lambda value: not value.strip() or _integer(1, 10)(value),
    ),
)

_BY_ENV = {s.env: s for s in SETTINGS}
# Cloud Storage's bucket alphabet (handlers/artifacts.py refuses the same names in a URI).
_BUCKET = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,220}[a-z0-9])?")


def parse_local_buckets(raw: str, env: str = "COURSEGEN_LOCAL_BUCKETS") -> dict[str, Path]:
    """``"lectures=/data/lectures, b2=./more"`` -> {"lectures": Path(...), "b2": Path(...)}.

    Each pair is ``bucket=folder``; the first ``=`` splits (a folder may contain ``=`` but
    not ``,``). A bucket named twice, an empty bucket or folder, or a bucket name Cloud
    Storage would refuse is a ValueError naming the variable, the value and what is allowed.
    """
    allowed = "comma-separated bucket=folder pairs, e.g. lectures=/data/lectures"
    buckets: dict[str, Path] = {}
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        bucket, eq, folder = (part.strip() for part in item.partition("="))
        if not eq or not folder:
            problem = f"{item!r} has no folder"
        elif not _BUCKET.fullmatch(bucket):
            problem = f"{bucket!r} is not a bucket name (lowercase letters, digits, '-', '_', '.')"
        elif bucket in buckets:
            problem = f"bucket {bucket!r} is named twice"
        else:
            buckets[bucket] = Path(folder).expanduser()
            continue
        raise ValueError(f"{env}={raw!r}: {problem}; expected {allowed}")
    return buckets


@dataclass(frozen=True)
class Settings:
    """A snapshot of the settings, read once at start-up (tests pass ``env`` explicitly)."""

    values: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """The settings of ``env`` (default: the process environment) with ``overrides``,
        every value checked: ``SettingError`` names the first one that is not allowed."""
        source = os.environ if env is None else env
        values = {s.env: source.get(s.env, s.default) for s in SETTINGS}
        for key, value in overrides.items():
            if key not in _BY_ENV:
                raise KeyError(f"unknown setting {key!r}")
            values[key] = value
        for setting in SETTINGS:
            value = values[setting.env]
            if not setting.check(value):
                raise SettingError(setting.env, value, setting.allowed)
        return cls(values)

    def get(self, env: str) -> str:
        if env not in _BY_ENV:
            raise KeyError(f"unknown setting {env!r}")
        return self.values.get(env, _BY_ENV[env].default)

    def get_int(self, env: str) -> int:
        raw = self.get(env)
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env} must be an integer, got {raw!r}") from None

    def get_bool(self, env: str) -> bool:
        return self.get(env).strip().lower() in _TRUE

    def get_list(self, env: str, sep: str = ",") -> tuple[str, ...]:
        return tuple(p.strip() for p in self.get(env).split(sep) if p.strip())

    @property
    def local_buckets(self) -> dict[str, Path]:
        """COURSEGEN_LOCAL_BUCKETS parsed (ValueError on a malformed value)."""
        return parse_local_buckets(self.get("COURSEGEN_LOCAL_BUCKETS"))

    def get_json(self, env: str) -> Any:
        raw = self.get(env)
        try:
            return json.loads(raw or "null")
        except json.JSONDecodeError as err:
            raise ValueError(f"{env} must be JSON: {err}") from None
