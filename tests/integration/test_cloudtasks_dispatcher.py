"""The Cloud Tasks dispatcher against gcloud-tasks-emulator, delivering to a local HTTP server."""

from __future__ import annotations

import json
import threading
import time

import pytest
from google.api_core import exceptions as gexc
from werkzeug.wrappers import Request, Response

from bridge.dispatch import AlreadyExists, TaskRequest
from bridge.dispatch.cloudtasks import CloudTasksDispatcher, clamp_deadline
from tests.emulators import create_queues, serve, tasks_client, unique

LOCATION = "europe-west1"


class Recorder:
    """A WSGI app that records deliveries and answers from a script of status codes."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.seen: list[tuple[dict[str, str], bytes, float]] = []
        self.changed = threading.Condition()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.changed:
            self.seen.append((dict(request.headers), request.get_data(), time.time()))
            status = self.statuses.pop(0) if self.statuses else 200
            self.changed.notify_all()
        return Response("{}", status=status, content_type="application/json")(
            environ, start_response
        )

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.seen) >= n, timeout), self.seen


def request(name: str = "t1", schedule_time: float | None = None) -> TaskRequest:
    return TaskRequest(
        queue="video-preparation-queue",
        name=name,
        step="prepare_video",
        payload={"courseId": "c1", "taskType": "prepare_video"},
        deadline_s=900.0,
        schedule_time=schedule_time,
    )


@pytest.fixture
def project():
    client = tasks_client()
    project = unique("tasks")
    create_queues(client, project, LOCATION, ["video-preparation-queue"])
    return client, project


@pytest.mark.emulator
def test_a_dispatched_task_is_posted_with_its_payload_headers_and_token(project):
    client, proj = project
    recorder = Recorder()
    with serve(recorder) as url:
        d = CloudTasksDispatcher(
            client,
            proj,
            LOCATION,
            {"prepare_video": url + "/run"},
            "",
            signer=lambda body: f"sig-{len(body)}",
        )
        d.dispatch(request())
        recorder.wait_for(1)
    headers, body, _ = recorder.seen[0]
    assert json.loads(body) == {"courseId": "c1", "taskType": "prepare_video"}
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["authorization"] == f"Bearer sig-{len(body)}"
    assert lower["content-type"] == "application/json"
    assert lower["x-cloudtasks-taskname"] == "t1"
    assert lower["x-cloudtasks-queuename"].endswith("/queues/video-preparation-queue")
    assert lower["x-cloudtasks-taskretrycount"] == "0"


@pytest.mark.emulator
def test_a_503_is_retried_with_a_growing_retry_count(project):
    client, proj = project
    recorder = Recorder([503, 503, 200])
    with serve(recorder) as url:
        d = CloudTasksDispatcher(client, proj, LOCATION, {"prepare_video": url}, "")
        d.dispatch(request())
        recorder.wait_for(3)
        time.sleep(0.5)  # no fourth delivery after the 200
    counts = [
        {k.lower(): v for k, v in h.items()}["x-cloudtasks-taskretrycount"]
        for h, _, _ in recorder.seen
    ]
    assert counts == ["0", "1", "2"]


@pytest.mark.emulator
def test_schedule_time_delays_the_delivery(project):
    client, proj = project
    recorder = Recorder()
    with serve(recorder) as url:
        d = CloudTasksDispatcher(client, proj, LOCATION, {"prepare_video": url}, "")
        at = time.time() + 1.5
        d.dispatch(request(schedule_time=at))
        recorder.wait_for(1)
    assert recorder.seen[0][2] >= at - 0.05


def test_the_task_carries_name_deadline_and_oidc_token():
    d = CloudTasksDispatcher(
        None,
        "p",
        "l",
        {"prepare_video": "https://step.example/"},
        "invoker@p.iam.gserviceaccount.com",
        "https://aud.example",
    )
    task = d.task(request(name="tabc", schedule_time=1_790_000_000.0))
    assert task["name"] == "projects/p/locations/l/queues/video-preparation-queue/tasks/tabc"
    assert task["http_request"]["oidc_token"] == {
        "service_account_email": "invoker@p.iam.gserviceaccount.com",
        "audience": "https://aud.example",
    }
    assert task["http_request"]["url"] == "https://step.example/"
    assert "Authorization" not in task["http_request"]["headers"]
    assert task["dispatch_deadline"].total_seconds() == 900
    assert task["schedule_time"].timestamp() == 1_790_000_000.0
    assert (clamp_deadline(1), clamp_deadline(3600)) == (15, 1800)


def test_an_unknown_step_url_is_a_clear_error():
    d = CloudTasksDispatcher(None, "p", "l", {}, "sa@p")
    with pytest.raises(ValueError, match="COURSEGEN_STEP_URLS"):
        d.task(request())


class FakeTasksClient:
    """Cloud Tasks' answer to a name it saw within the hour (the emulator never refuses one)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def create_task(self, parent: str, task: dict) -> dict:
        if task["name"] in self.names:
            raise gexc.AlreadyExists(f"Requested entity already exists: {task['name']}")
        self.names.add(task["name"])
        return task


def test_already_exists_becomes_the_ports_already_exists():
    d = CloudTasksDispatcher(FakeTasksClient(), "p", "l", {"prepare_video": "https://s/"}, "sa")
    d.dispatch(request())
    with pytest.raises(AlreadyExists):
        d.dispatch(request())
