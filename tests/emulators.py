"""Helpers for tests on the real emulators: fresh stores, Pub/Sub topics, task queues, servers."""

from __future__ import annotations

import os
import socket
import threading
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


@contextmanager
def storage_emulator() -> Iterator[str]:
    """An in-memory gcp-storage-emulator on 127.0.0.1; yields its base URL."""
    server_mod = pytest.importorskip("gcp_storage_emulator.server")
    port = free_port()
    server = server_mod.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
