"""Cloud Tasks dispatcher: one named HTTP task per TaskRequest, with an OIDC token for the step."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc

from bridge.dispatch import AlreadyExists, TaskRequest

MIN_DEADLINE_S = 15.0  # Cloud Tasks accepts a dispatch deadline of 15 s .. 30 min for HTTP
MAX_DEADLINE_S = 1800.0

Signer = Callable[[bytes], str]


class CloudTasksDispatcher:
    """Creates ``projects/P/locations/L/queues/Q/tasks/{request.name}`` for each request.

    The name makes re-dispatch idempotent: Cloud Tasks refuses a name it saw in about the last
    hour with ALREADY_EXISTS, raised here as ``bridge.dispatch.AlreadyExists``. ``signer``
    (emulators only, which cannot mint OIDC tokens) adds ``Authorization: Bearer <signer(body)>``
    instead of the OIDC token; leave ``invoker_sa`` empty when using it.
    """

    def __init__(
        self,
        client: Any,
        project: str,
        location: str,
        step_urls: Mapping[str, str],
        invoker_sa: str,
        audience: str | None = None,
        *,
        signer: Signer | None = None,
    ) -> None:
        self.client = client
        self.project = project
        self.location = location
        self.step_urls = dict(step_urls)
        self.invoker_sa = invoker_sa
        self.audience = audience or None
        self.signer = signer

    def queue_path(self, queue: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{queue}"

    def task(self, request: TaskRequest) -> dict[str, Any]:
        """The Cloud Tasks ``Task`` (as a dict) for ``request``."""
        url = self.step_urls.get(request.step)
        if not url:
            raise ValueError(f"no URL configured for step {request.step!r} (COURSEGEN_STEP_URLS)")
        body = json.dumps(dict(request.payload), separators=(",", ":")).encode()
        http: dict[str, Any] = {
            "http_method": "POST",
            "url": url,
            "headers": {"Content-Type": "application/json"},
            "body": body,
        }
        if self.invoker_sa:
            token: dict[str, str] = {"service_account_email": self.invoker_sa}
            if self.audience:
                token["audience"] = self.audience
            http["oidc_token"] = token
        if self.signer is not None:
            http["headers"]["Authorization"] = f"Bearer {self.signer(body)}"
        task: dict[str, Any] = {
            "name": f"{self.queue_path(request.queue)}/tasks/{request.name}",
            "http_request": http,
            "dispatch_deadline": timedelta(seconds=clamp_deadline(request.deadline_s)),
        }
        if request.schedule_time is not None:
            task["schedule_time"] = datetime.fromtimestamp(request.schedule_time, UTC)
        return task

    def dispatch(self, request: TaskRequest) -> None:
        task = self.task(request)
        try:
            self.client.create_task(parent=self.queue_path(request.queue), task=task)
        except gexc.AlreadyExists as err:
            raise AlreadyExists(f"task {request.name} already exists in {request.queue}") from err


def clamp_deadline(seconds: float) -> float:
    return min(MAX_DEADLINE_S, max(MIN_DEADLINE_S, float(seconds)))
