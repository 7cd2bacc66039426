"""Load test driver: the task endpoint under gunicorn on 127.0.0.1, loaded by wrk or Python."""

# python -m tests.reliability.load [--courses 1500] [--duration 12] [--json]: prepares
# courses with signed deliveries waiting, serves tests/reliability/load_app.py with gunicorn,
# measures the endpoint's overhead with one sequential keep-alive client, then drives a mix of
# fresh deliveries, duplicates and status reads from a second process (wrk with load.lua, or
# the Python client below when wrk is missing) and audits every history afterwards.

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.core import Bridge
from bridge.ops.replay import audit_all
from bridge.runtime.clock import SystemClock
from bridge.tooling.synthetic import noop_steps
from handlers.auth import HmacVerifier, sign
from handlers.endpoint import TaskEndpoint
from statemachine.pipeline import default_pipeline
from statemachine.store.sqlite import SqliteStore
from tests.reliability.conftest import RecordingDispatcher

ROOT = Path(__file__).resolve().parents[2]
SECRET = "load-test-secret"
HERE = Path(__file__).resolve().parent


def prepare(data: Path, courses: int) -> tuple[list[tuple[str, str]], list[str]]:
    """``courses`` courses, each with three tasks scheduled and not delivered: their signed
    (token, body) pairs, and the course ids. Written with synchronous=NORMAL (set-up only)."""
    store = SqliteStore(data / "events.db", synchronous="NORMAL")
    pipeline, clock = default_pipeline(), SystemClock()
    dispatcher = RecordingDispatcher()
    bridge = Bridge(store, dispatcher, pipeline, clock)
    endpoint = TaskEndpoint(
        store=store,
        steps=noop_steps(pipeline),
        pipeline=pipeline,
        verify=HmacVerifier(SECRET.encode(), clock.now),
        notify=lambda course_id, version: None,
        services=None,
    )
    expires = int(clock.now() + 6 * 3600)
    ids = []
    for i in range(courses):
        course = bridge.ingest({"videoUri": "gs://load/l.mp4", "title": "Load"}, message_id=f"l{i}")
        ids.append(course)
        body = _body(dispatcher.requests[-1].payload)
        token = sign(SECRET.encode(), body, expires)
        answer = endpoint.handle({"Authorization": f"Bearer {token}"}, body, "")
        assert answer.body["status"] == "succeeded", answer
        bridge.advance(course)  # schedules extract_frames, transcribe, analyze_video
    store.close()
    tasks = []
    for request in dispatcher.requests:
        if request.step != "prepare_video":
            body = _body(request.payload)
            tasks.append((sign(SECRET.encode(), body, expires), body.decode()))
    return tasks, ids


def _body(payload: Any) -> bytes:
    return json.dumps(dict(payload), separators=(",", ":")).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(data: Path, port: int, workers: int = 2, threads: int = 4) -> Iterator[str]:
    env = dict(os.environ, COURSEGEN_LOAD_DATA=str(data), COURSEGEN_TASK_SECRET=SECRET)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    cmd += ["-k", "gthread", "--threads", str(threads), "--keep-alive", "30"]
    cmd += ["--log-level", "warning", "tests.reliability.load_app:create_app()"]
    log = open(data / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer in time")


def post(conn: http.client.HTTPConnection, token: str, body: str) -> tuple[int, dict, float, float]:
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "X-CloudTasks-TaskRetryCount": "0",
    }
    t0 = time.perf_counter()
    conn.request("POST", "/tasks", body=body, headers=headers)
    response = conn.getresponse()
    doc = json.loads(response.read())
    took = (time.perf_counter() - t0) * 1000
    return response.status, doc, took, float(response.getheader("X-Handle-Ms") or "nan")


def overhead(address: str, tasks: list[tuple[str, str]]) -> dict[str, Any]:
    """One client, one keep-alive connection, fresh deliveries one after another."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    client, server = [], []
    for token, body in tasks:
        status, doc, took, handled = post(conn, token, body)
        assert status == 200 and doc["status"] == "succeeded", (status, doc)
        client.append(took)
        server.append(handled)
    conn.close()
    return {
        "deliveries": len(tasks),
        "client_p50_ms": round(statistics.median(client), 3),
        "client_p99_ms": round(_pct(client, 99), 3),
        "endpoint_p50_ms": round(statistics.median(server), 3),
        "endpoint_p99_ms": round(_pct(server, 99), 3),
    }


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def write_requests(path: Path, tasks: list[tuple[str, str]], ids: list[str]) -> None:
    with open(path, "w") as out:
        for token, body in tasks:
            out.write(f"POST\t/tasks\t{token}\t{body}\n")
        for course in ids:
            out.write(f"GET\t/status/{course}\t\t\n")


def drive_wrk(address: str, requests: Path, duration: int, threads: int, conns: int) -> dict:
    env = dict(os.environ, LOAD_REQUESTS=str(requests), LOAD_THREADS=str(threads))
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s"]
    cmd += ["-s", str(HERE / "load.lua"), f"http://{address}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith('{"requests"')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    return {"driver": "wrk", **json.loads(line)}


def drive_python(address: str, requests: Path, duration: int, threads: int, conns: int) -> dict:
    """The same mix from a second Python process (when wrk is not installed)."""
    cmd = [sys.executable, "-m", "tests.reliability.load", "--drive", address]
    cmd += ["--requests", str(requests), "--duration", str(duration), "--connections", str(conns)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, env=env)
    return {"driver": "python", **json.loads(out.stdout.strip().splitlines()[-1])}


def python_client(address: str, requests: Path, duration: float, conns: int) -> dict:
    lines = [line.rstrip("\n").split("\t") for line in requests.read_text().splitlines()]
    fresh = [(p[2], p[3]) for p in lines if p[0] == "POST"]
    reads = [p[1] for p in lines if p[0] == "GET"]
    lock, stop = threading.Lock(), time.monotonic() + duration
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    errors: Counter[str] = Counter()

    def worker(index: int) -> None:
        mine, sent, rng, n = fresh[index::conns], [], random.Random(index), 0
        host, port = address.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.monotonic() < stop:
            n += 1
            t0 = time.perf_counter()
            try:
                if n % 10 < 6 and mine:
                    sent.append(mine.pop())
                    status, doc, _, _ = post(conn, *sent[-1])
                elif n % 10 < 8 and sent:
                    status, doc, _, _ = post(conn, *rng.choice(sent))
                else:
                    conn.request("GET", rng.choice(reads))
                    response = conn.getresponse()
                    status, doc = response.status, json.loads(response.read())
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    errors[type(err).__name__] += 1
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                continue
            with lock:
                latencies.append((time.perf_counter() - t0) * 1000)
                answers[f"{status // 100}xx"] += 1
                answers[str(doc.get("status"))] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "duration_s": round(elapsed, 3),
        "errors": dict(errors),
        "latency_ms": {"p50": _pct(latencies, 50), "p99": _pct(latencies, 99)},
        "answers": dict(answers),
    }


def verify_histories(data: Path) -> dict[str, Any]:
    store = SqliteStore(data / "events.db")
    try:
        verdicts = list(audit_all(store))
        keys: Counter[str] = Counter()
        for _, events in store.scan():
            keys.update(e.data["idempotency_key"] for e in events if e.type == "TaskSucceeded")
    finally:
        store.close()
    return {
        "courses": len(verdicts),
        "verified": sum(v.ok for v in verdicts),
        "results_recorded_twice": sum(1 for n in keys.values() if n > 1),
        "task_results": sum(keys.values()),
    }


def run(courses: int, duration: int, conns: int = 8, threads: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coursegen-load-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        tasks, ids = prepare(data, courses)
        prepared_s = time.perf_counter() - t0
        probe, rest = tasks[:300], tasks[300:]
        write_requests(data / "requests.tsv", rest, ids)
        use_wrk = shutil.which("wrk") is not None
        drive = drive_wrk if use_wrk else drive_python
        with gunicorn(data, free_port()) as address:
            measured = overhead(address, probe)
            load = drive(address, data / "requests.tsv", duration, threads, conns)
        load["throughput_rps"] = round(load["requests"] / load["duration_s"], 1)
        return {
            "server": "gunicorn -w 2 -k gthread --threads 4, SQLite synchronous=FULL",
            "prepared": {"courses": courses, "tasks": len(tasks), "seconds": round(prepared_s, 1)},
            "overhead": measured,
            "load": load,
            "histories": verify_histories(data),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load the task endpoint under gunicorn.")
    parser.add_argument("--courses", type=int, default=4000)
    parser.add_argument("--duration", type=int, default=12)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--drive", help="(internal) run the Python client against ADDRESS")
    parser.add_argument("--requests", type=Path)
    args = parser.parse_args(argv)
    if args.drive:
        print(json.dumps(python_client(args.drive, args.requests, args.duration, args.connections)))
        return 0
    print(json.dumps(run(args.courses, args.duration, args.connections), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
