"""The cloud runtime's tasks carry the local HMAC token when a task secret is set (emulators,
cloud-local: no OIDC there), and no token of ours when it is not (the cloud: OIDC)."""

from __future__ import annotations

import json
import time

import pytest

from bridge.dispatch import TaskRequest
from bridge.runtime.cloud import cloud_runtime
from bridge.settings import Settings
from handlers.auth import HmacVerifier, Unauthorized


class Publisher:
    """Only what PubSubNotifier needs at construction."""

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"


def task_for(secret: str) -> dict:
    settings = Settings.from_env(
        {},
        COURSEGEN_STORE="memory",
        GOOGLE_CLOUD_PROJECT="p",
        COURSEGEN_DISPATCHER="cloudtasks",
        COURSEGEN_STEP_URLS=json.dumps({"prepare_video": "http://127.0.0.1:1/"}),
        COURSEGEN_AUTH="hmac" if secret else "none",
        COURSEGEN_TASK_SECRET=secret,
    )
    rt = cloud_runtime(settings, steps={}, tasks_client=object(), publisher=Publisher())
    request = TaskRequest(
        queue="video-preparation-queue",
        name="t1",
        step="prepare_video",
        payload={"courseId": "c1"},
        deadline_s=60,
    )
    return rt.dispatcher.task(request)["http_request"]


def test_with_a_task_secret_each_task_carries_an_hmac_token_for_its_body():
    http = task_for("s3cret")
    headers = {"Authorization": http["headers"]["Authorization"]}
    verify = HmacVerifier(b"s3cret", time.time)
    assert verify(headers, http["body"], "http://127.0.0.1:1/") == "local-dispatcher"
    with pytest.raises(Unauthorized):
        verify(headers, http["body"] + b" ", "http://127.0.0.1:1/")
    assert "oidc_token" not in http


def test_without_one_the_task_has_no_token_of_ours():
    assert "Authorization" not in task_for("")["headers"]
