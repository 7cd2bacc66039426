"""cloud-local: the deployed topology on one machine, every piece a process of its own.

``up`` starts the Firestore, Pub/Sub, Cloud Tasks and Cloud Storage (fake-gcs-server) emulators
(.ci/emulators.sh), creates what terraform/
creates (bridge.tooling.cloud_provision), then starts each function of main.py under
functions-framework on a loopback port with Terraform's environment for it
(bridge.tooling.cloud_topology) and the reconcile job's stand-in. Every process group is
recorded in ``DIR/state.json``; ``down`` stops those and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.tooling import cloud_procs as procs
from bridge.tooling import cloud_provision as provision
from bridge.tooling import cloud_topology as topo
from bridge.tooling.cloud_procs import Proc, StartFailed

REPO = Path(__file__).resolve().parents[2]
EMULATORS_SH = REPO / ".ci" / "emulators.sh"
DEFAULT_PROJECT = "coursegen-local"
EMULATORS_TIMEOUT_S = 240.0  # the first start also builds the Cloud Tasks emulator's venv
ANSWER_TIMEOUT_S = 180.0
EMULATOR_VARS = (
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "CLOUD_TASKS_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
)
# Variables of the caller's environment a function process must not inherit: it gets
# exactly what Terraform (and the local stack) gives it.
_FOREIGN = ("COURSEGEN_", "GOOGLE_", "CLOUDSDK_", "FUNCTION_", "K_")


class AlreadyUp(RuntimeError):
    """``up`` on a folder whose stack is running."""


class NotUp(RuntimeError):
    """A command that needs a running stack found none in the folder."""


@dataclass(kw_only=True)
class State:
    """What ``up`` recorded in ``DIR/state.json``."""

    dir: Path
    project: str
    region: str
    bucket: str
    exports: dict[str, str]
    processes: list[Proc] = field(default_factory=list)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.dir / "state.json"

    def save(self) -> None:
        body = {
            "project": self.project,
            "region": self.region,
            "bucket": self.bucket,
            "exports": self.exports,
            "processes": [p.as_dict() for p in self.processes],
            "envs": self.envs,
            "notes": self.notes,
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds local secrets
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=2)
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, folder: Path) -> State:
        path = folder / "state.json"
        if not path.exists():
            raise NotUp(f"no cloud-local stack in {folder} (run `coursegen cloud-local up`)")
        raw = json.loads(path.read_text())
        return cls(
            dir=folder,
            project=raw["project"],
            region=raw["region"],
            bucket=raw["bucket"],
            exports=raw["exports"],
            processes=[Proc.of(p) for p in raw["processes"]],
            envs=raw["envs"],
            notes=raw.get("notes", {}),
        )

    def proc(self, name: str) -> Proc:
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(f"no process {name!r}; one of {', '.join(p.name for p in self.processes)}")

    @property
    def emulators(self) -> dict[str, str]:
        return {k: v for k, v in self.exports.items() if k in EMULATOR_VARS}


def export_lines(state: State) -> list[str]:
    return [f"export {k}={v}" for k, v in state.exports.items()]


# -- up ----------------------------------------------------------------------------------


def up(
    folder: Path,
    *,
    project: str = DEFAULT_PROJECT,
    region: str = topo.REGION,
    step_seconds: float | None = None,
    reconcile_every_s: float = topo.RECONCILE_EVERY_S,
    quiet_s: int = topo.RECONCILE_QUIET_S,
    timeout_s: float = ANSWER_TIMEOUT_S,
) -> State:
    """Start the stack in ``folder``; ``step_seconds``: synthetic steps taking that long."""
    folder = folder.resolve()
    _refuse_running(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("state.json", "emulators/env"):
        (folder / stale).unlink(missing_ok=True)
    state = State(
        dir=folder,
        project=project,
        region=region,
        bucket=topo.artifacts_bucket(project),
        exports={},
    )
    try:
        _start_emulators(state)
        place = _place(state, quiet_s)
        with provision.stack_env(state.emulators):
            state.notes["created"] = provision.create_pubsub(project, place.urls["bridge"])
            kept = provision.create_queues(
                state.exports["CLOUD_TASKS_EMULATOR_HOST"], project, region
            )
            state.notes["queue_retry_config_kept"] = kept
            provision.create_bucket(project, state.bucket, region)
        _start_functions(state, place, step_seconds)
        _start_scheduler(state, place, reconcile_every_s)
        state.save()
        procs.wait_answering(state.processes, timeout_s)
    except BaseException:
        down(folder, state=state)
        raise
    state.notes["up_at"] = time.time()
    state.save()
    return state


def _refuse_running(folder: Path) -> None:
    try:
        old = State.load(folder)
    except NotUp:
        return
    alive = [p.name for p in old.processes if procs.running(p)]
    if alive:
        raise AlreadyUp(
            f"a cloud-local stack is already up in {folder} ({len(alive)} processes: "
            f"{', '.join(alive[:4])}...); `coursegen cloud-local down --dir {folder}` first"
        )


def _start_emulators(state: State) -> None:
    """Firestore, Pub/Sub, Cloud Tasks by .ci/emulators.sh; Cloud Storage if it lacks it."""
    emulators = state.dir / "emulators"
    env = _base_env() | {
        "COURSEGEN_EMULATORS_DIR": str(emulators),
        "GOOGLE_CLOUD_PROJECT": state.project,
        "COURSEGEN_REGION": state.region,
    }
    env.update(
        {k: os.environ[k] for k in ("TASKS_EMULATOR_VENV", "CLOUDSDK_ROOT") if k in os.environ}
    )
    try:
        done = subprocess.run(
            ["bash", str(EMULATORS_SH), "start"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=EMULATORS_TIMEOUT_S,
        )
    finally:
        _adopt_emulators(state, emulators)  # whatever started is recorded, even on failure
        state.save()
    if done.returncode != 0:
        raise StartFailed(f".ci/emulators.sh start failed:\n{done.stderr[-2000:]}")
    for line in done.stdout.splitlines():
        name, eq, value = line.removeprefix("export ").partition("=")
        if eq and name in EMULATOR_VARS:
            state.exports[name] = value
    if "STORAGE_EMULATOR_HOST" not in state.exports:
        raise StartFailed(".ci/emulators.sh exported no STORAGE_EMULATOR_HOST (fake-gcs-server)")
    state.exports |= {
        "GOOGLE_CLOUD_PROJECT": state.project,
        "COURSEGEN_ARTIFACTS": f"gs://{state.bucket}/artifacts",
        "COURSEGEN_CLOUD_LOCAL_DIR": str(state.dir),
    }


def _adopt_emulators(state: State, emulators: Path) -> None:
    """Record the process groups .ci/emulators.sh started (its pid files name them)."""
    for pid_file in sorted(emulators.glob("*.pid")):
        try:
            pgid = int(pid_file.read_text().strip())
        except ValueError:
            continue
        stat = procs._stat(pgid)
        if stat is None or stat[0] != pgid:
            continue
        name = pid_file.stem
        if any(p.name == name for p in state.processes):
            continue
        state.processes.append(
            Proc(
                name=name,
                pgid=pgid,
                started=stat[1],
                argv=("bash", str(EMULATORS_SH), "start"),
                log=str(emulators / f"{name}.log"),
            )
        )


def _place(state: State, quiet_s: int) -> topo.Place:
    names = ["bridge", *topo.pipeline_doc()["steps"]]
    urls = {n: f"http://127.0.0.1:{procs.free_port()}" for n in names}
    token = secrets.token_urlsafe(24)
    state.exports["COURSEGEN_OPERATOR_TOKEN"] = token
    return topo.Place(
        project=state.project,
        region=state.region,
        emulators=state.emulators,
        urls=urls,
        task_secret=secrets.token_urlsafe(32),
        operator_token=token,
        reconcile_quiet_s=quiet_s,
    )


def _base_env() -> dict[str, str]:
    """The caller's environment without any coursegen, Google or functions setting."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN) and k not in EMULATOR_VARS
    }


def function_env(state: State, fn: topo.Function, port: int) -> dict[str, str]:
    """Terraform's environment of ``fn``, the local additions, and what Cloud Run sets."""
    scratch = state.dir / "tmp" / fn.name  # each instance has a /tmp of its own
    scratch.mkdir(parents=True, exist_ok=True)
    platform = {
        "K_SERVICE": fn.service,
        "FUNCTION_TARGET": fn.target,
        "FUNCTION_SIGNATURE_TYPE": fn.signature_type,
        "PORT": str(port),
        "THREADS": str(fn.concurrency),  # max_instance_request_concurrency
        "TMPDIR": str(scratch),
        "PYTHONUNBUFFERED": "1",
    }
    return _base_env() | platform | dict(fn.env) | dict(fn.local_env)


def _function_argv(fn: topo.Function, port: int, step_seconds: float | None) -> list[str]:
    common = [
        "--source", str(REPO / "main.py"),
        "--target", fn.target,
        "--signature-type", fn.signature_type,
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    if step_seconds is None:
        return [sys.executable, "-m", "functions_framework", *common]
    module = "bridge.tooling.cloud_function"
    return [sys.executable, "-m", module, *common, "--step-seconds", str(step_seconds)]


def _start_functions(state: State, place: topo.Place, step_seconds: float | None) -> None:
    state.notes["synthetic_step_seconds"] = step_seconds
    for fn in topo.functions(place):
        url = place.urls[fn.name]
        port = int(url.rsplit(":", 1)[1])
        env = function_env(state, fn, port)
        state.envs[fn.name] = env
        proc = procs.launch(
            fn.name,
            _function_argv(fn, port, step_seconds),
            env,
            state.dir / "logs" / f"{fn.name}.log",
            cwd=REPO,
            port=port,
            url=url,
        )
        state.processes.append(proc)
        state.save()


def _start_scheduler(state: State, place: topo.Place, every_s: float) -> None:
    argv = [
        sys.executable, "-m", "bridge.tooling.cloud_scheduler",
        "--url", place.urls["bridge"] + topo.RECONCILE_PATH,
        "--every", str(every_s),
    ]  # fmt: skip
    env = _base_env() | {"PYTHONUNBUFFERED": "1"}
    state.envs["scheduler"] = env
    log = state.dir / "logs" / "scheduler.log"
    state.processes.append(procs.launch("scheduler", argv, env, log, cwd=REPO))


# -- down, status, kill, restart -----------------------------------------------------------


def down(folder: Path, *, state: State | None = None) -> list[str]:
    """Stop every process group recorded in ``folder`` (in reverse order); their names."""
    folder = folder.resolve()
    if state is None:
        try:
            state = State.load(folder)
        except NotUp:
            return []
    stopped = [p.name for p in reversed(state.processes) if procs.stop(p)]
    emulators = folder / "emulators"
    if emulators.exists():  # its bookkeeping; the groups themselves are stopped above
        subprocess.run(
            ["bash", str(EMULATORS_SH), "stop"],
            env=_base_env() | {"COURSEGEN_EMULATORS_DIR": str(emulators)},
            capture_output=True,
            timeout=60,
        )
    state.path.unlink(missing_ok=True)
    return stopped


def status(folder: Path) -> list[dict[str, Any]]:
    """One row per recorded process group: name, pgid, live processes, where it listens."""
    state = State.load(folder.resolve())
    return [
        {
            "name": p.name,
            "pgid": p.pgid,
            "running": procs.running(p),
            "processes": len(procs.live(p)),
            "listens": p.url or (f"127.0.0.1:{p.port}" if p.port else ""),
            "log": p.log,
        }
        for p in state.processes
    ]


def process_count(state: State) -> tuple[int, int]:
    """(process groups running, processes in them)."""
    live = [procs.live(p) for p in state.processes]
    return sum(1 for m in live if m), sum(len(m) for m in live)


def kill(folder: Path, name: str, sig: int) -> bool:
    """Send ``sig`` to one recorded process group (fault tests: a crashed instance)."""
    state = State.load(folder.resolve())
    return procs.signal_group(state.proc(name), sig)


def restart(folder: Path, name: str, *, timeout_s: float = 120.0) -> Proc:
    """Start a stopped function (or the scheduler) again, as ``up`` started it."""
    state = State.load(folder.resolve())
    old = state.proc(name)
    if procs.running(old):
        raise AlreadyUp(f"{name} is running (process group {old.pgid})")
    if name not in state.envs:
        raise NotUp(f"{name} was started by .ci/emulators.sh; cloud-local cannot restart it")
    new = procs.launch(
        name, old.argv, state.envs[name], Path(old.log), cwd=REPO, port=old.port, url=old.url
    )
    state.processes = [new if p.name == name else p for p in state.processes]
    state.save()
    procs.wait_answering([new], timeout_s)
    return new


def client_env(state: State) -> Mapping[str, str]:
    """What a client of the stack needs in its environment (emulators, project)."""
    return state.emulators | {"GOOGLE_CLOUD_PROJECT": state.project}
