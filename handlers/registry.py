"""The step registry: each task type maps to one function with one signature.

How a step's error is classified (``is_transient``), which decides whether the queue retries:

- an error that says so: ``retryable`` (``StepError``, ``ProviderError``: a provider's 429
  or 5xx is a ``TransientProviderError``) or ``permanent`` (``MediaError``);
- transient: the failures of a network or of a busy service, which a later attempt may not
  meet: ``ConnectionError``, ``TimeoutError``, ``socket.gaierror``, an ``OSError`` with a
  network errno, ``http.client.IncompleteRead``, ``subprocess.TimeoutExpired``,
  ``MemoryError``; an error of an HTTP stack named so in its class hierarchy (requests'
  ``ConnectionError``/``Timeout``, httpx's ``TransportError``, google-api-core's
  ``ServiceUnavailable``/``TooManyRequests``), or one carrying a ``code``/``status_code``
  of 408, 429 or 5xx;
- permanent: everything else, above all ``ValueError``, ``TypeError``, ``KeyError``,
  ``AttributeError``, ``FileNotFoundError``, ``RuntimeError``: programming and configuration
  errors fail the same way on every attempt, so retrying them only burns the queue's
  attempts (and money) before the course fails anyway.

A transient error may carry ``retry_after_s`` (a provider's Retry-After): the endpoint puts
it in its 503 answer.
"""

from __future__ import annotations

import errno
import http.client
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine.lifecycle import TaskStatus
from statemachine.state import CourseState, TaskState


class StepError(Exception):
    """Base of the errors a step raises on purpose; ``metering``: what the attempt cost
    before it failed (recorded with the failure: paid calls count even when they fail)."""

    retryable = True

    def __init__(self, message: str, *, metering: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.metering = dict(metering or {})


class TransientStepError(StepError):
    """Worth retrying (network, rate limit, 5xx): the queue retries with backoff."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        metering: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, metering=metering)
        self.retry_after_s = retry_after_s


class PermanentStepError(StepError):
    """Retrying cannot help (bad input, refused source): recorded, and the course fails."""

    retryable = False


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.EPIPE,
        errno.EAGAIN,
    }
)
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    http.client.IncompleteRead,
    subprocess.TimeoutExpired,
    MemoryError,
)
# Named in the class hierarchy of the HTTP stacks' errors (not imported here).
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectError",
        "Timeout",
        "TimeoutException",
        "TransportError",
        "ServiceUnavailable",
        "TooManyRequests",
        "InternalServerError",
        "GatewayTimeout",
        "BadGateway",
    }
)
_TRANSIENT_CODES = frozenset({408, 429})


def is_transient(err: BaseException) -> bool:
    """Whether a later attempt may succeed where this one raised ``err`` (module docstring)."""
    said = getattr(err, "retryable", None)
    if isinstance(said, bool):
        return said
    permanent = getattr(err, "permanent", None)
    if isinstance(permanent, bool):
        return not permanent
    if isinstance(err, _TRANSIENT_TYPES):
        return True
    if isinstance(err, OSError) and err.errno in _NETWORK_ERRNOS:
        return True
    if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(err).__mro__[:-2]):
        return True
    for attr in ("code", "status_code"):
        code = getattr(err, attr, None)
        if isinstance(code, int) and not isinstance(code, bool):
            return code in _TRANSIENT_CODES or 500 <= code <= 599
    return False


def retry_after_of(err: BaseException) -> float | None:
    """The wait ``err`` asks for (a provider's Retry-After), if it is a sane number."""
    value = getattr(err, "retry_after_s", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 86_400:
        return float(value)
    return None


def no_progress(done: float, total: float) -> None:
    """The checkpoint of a step run outside the endpoint: nothing to report, never cancelled."""


@dataclass(frozen=True, slots=True)
class StepContext:
    course: CourseState
    task: TaskState
    attempt: int
    services: Any  # handlers.services.StepServices: artifacts, providers, settings, clock
    # Call as the work goes on with (done, total): reports progress and raises
    # handlers.progress.StepCancelled once the course is cancelled (handlers/progress.py).
    progress: Callable[[float, float], None] = no_progress

    @property
    def course_id(self) -> str:
        return self.course.course_id

    def upstream(self, step: str) -> TaskState:
        """The succeeded task of a prerequisite step (not for fan-out steps)."""
        task = self.course.task(step)
        if task is None or task.status != TaskStatus.SUCCEEDED:
            raise PermanentStepError(f"prerequisite {step} has not succeeded")
        return task

    def shards(self, step: str) -> list[TaskState]:
        """Every succeeded shard of a fan-out step, in shard order."""
        found = [t for t in self.course.step_tasks(step) if t.status == TaskStatus.SUCCEEDED]
        return sorted(found, key=lambda t: t.shard or 0)


@dataclass(frozen=True, slots=True)
class StepResult:
    outputs: Mapping[str, str] = field(default_factory=dict)  # name -> artifact reference
    summary: Mapping[str, Any] = field(default_factory=dict)  # small facts for decide and people
    metering: Mapping[str, Any] = field(default_factory=dict)  # tokens, cost, model, prompt


StepFn = Callable[[StepContext], StepResult]

_REGISTRY: dict[str, StepFn] = {}


def register(name: str) -> Callable[[StepFn], StepFn]:
    def wrap(fn: StepFn) -> StepFn:
        _REGISTRY[name] = fn
        return fn

    return wrap


def real_steps() -> Mapping[str, StepFn]:
    """The product's steps (imported lazily: they pull in media and AI libraries)."""
    import handlers.steps  # noqa: F401  (registers every step)

    return dict(_REGISTRY)
