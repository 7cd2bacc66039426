"""A developer's local stack as one server: the embedded runtime behind the dashboard app."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from bridge.core import Bridge
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from bridge.web.dashboard.app import Backend, create_app
from handlers.auth import Unauthorized, allow_all, bearer
from handlers.registry import StepFn

log = logging.getLogger("coursegen.serve")


@dataclass
class LocalBridgeRuntime:
    """What ``bridge.web.bridge_app.create_bridge_app`` needs, on the embedded runtime: push routes
    take the operator token as their bearer token (``COURSEGEN_AUTH=none``: anyone), and
    rejected messages are parked in ``dead-letters.jsonl`` beside the event store."""

    runtime: Runtime
    operator_token: str
    dead_letters: Path
    open_auth: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)

    @property
    def bridge(self) -> Bridge:
        return self.runtime.bridge

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def quiet_s(self) -> float:
        return float(self.runtime.settings.get_int("COURSEGEN_RECONCILE_QUIET_SECONDS"))

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> str:
        if self.open_auth:
            return allow_all(headers, body, url)
        if not self.operator_token:
            raise Unauthorized("set COURSEGEN_OPERATOR_TOKEN (or COURSEGEN_AUTH=none) to push")
        import hmac

        if not hmac.compare_digest(bearer(headers).encode(), self.operator_token.encode()):
            raise Unauthorized("wrong bearer token")
        return "operator"

    def dead_letter(
        self, data: bytes, reason: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        record = {
            "at": time.time(),
            "reason": reason,
            "attributes": dict(attributes or {}),
            "data": data.decode("utf-8", "replace"),
        }
        with self._lock, self.dead_letters.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


@dataclass
class Stack:
    app: Flask
    runtime: Runtime

    def close(self) -> None:
        self.runtime.close()


def operator_token(cfg: Settings) -> str:
    """COURSEGEN_OPERATOR_TOKEN, from the settings table (or the environment)."""
    try:
        return cfg.get("COURSEGEN_OPERATOR_TOKEN")
    except KeyError:  # not (yet) a declared setting
        return os.environ.get("COURSEGEN_OPERATOR_TOKEN", "")


def local_stack(
    data_dir: str | Path,
    *,
    settings: Settings | None = None,
    steps: Mapping[str, StepFn] | None = None,
    workers: int = 2,
) -> Stack:
    """The dashboard, its API, ``/tasks`` and the bridge's push routes over the embedded
    runtime in ``data_dir``; ``workers`` > 0 also runs it (``Runtime.start``: the local Cloud
    Tasks dispatcher, the legacy transport when enabled, and the reconciler loop)."""
    from bridge.web.bridge_app import create_bridge_app

    cfg = settings or Settings.from_env()
    root = Path(data_dir)
    rt = embedded(root, settings=cfg, steps=steps)
    bridge_rt = LocalBridgeRuntime(
        rt,
        operator_token(cfg),
        root / "dead-letters.jsonl",
        open_auth=cfg.get("COURSEGEN_AUTH") == "none",
    )
    bridge_app = create_bridge_app(lambda: bridge_rt)
    backend = Backend(
        store=rt.store,
        artifacts_root=Path(rt.artifacts.root),
        endpoint=rt.endpoint,
        bridge_app=bridge_app,
    )
    app = create_app(backend)
    if workers > 0:
        # The local queue died with the last process: pick up the active courses' tasks.
        recovered = rt.bridge.recover()
        if recovered["tasks"] or recovered["courses"]:
            log.info("recovered %s", recovered)
        rt.start(workers)
    return Stack(app, rt)


def serve(app: Flask, host: str, port: int) -> None:
    """Serve ``app`` with werkzeug's threaded server until interrupted."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    log.info("coursegen serve on http://%s:%d/", host, server.server_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


@dataclass
class Background:
    """A server running in a daemon thread (tests, screenshots)."""

    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def in_background(app: Flask, host: str = "127.0.0.1", port: int = 0) -> Background:
    """Serve ``app`` from a thread on ``host`` (port 0: a free one) until ``stop()``."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="coursegen-serve", daemon=True)
    thread.start()
    return Background(server, thread)
