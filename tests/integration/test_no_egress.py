"""The offline default makes no network connection: `coursegen run samples/lecture.mp4` inside a
loopback-only network namespace, every connect/sendto/sendmsg/sendmmsg recorded by strace.

The run completes there (exit 0, a course with lessons), and no traced call, in the process or
any child (ffmpeg, tesseract), names an address other than loopback, a Unix or a netlink socket:
a DNS query to /etc/resolv.conf's nameserver shows as a connect to its port 53. The network
switches must come from the product: the test strips them from the environment it passes on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.egress import STRACE_FILTER, destinations, leaving

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "lecture.mp4"
TOOLS = ("unshare", "strace", "ip")
# The switches the product must set itself; inherited from the test's shell they would hide a
# regression.
PRODUCT_SWITCHES = ("ORT_DISABLE_TELEMETRY", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")
# Background uploaders start late: onnxruntime's first lookup came ~10 s after its import, about
# when a course ends. The process stays this long after the course, as a worker or server would.
LINGER_S = 15
# `coursegen run ...` in-process (bridge.cli's click group, as the console script calls it), then
# a linger. The first connect is a loopback probe: it proves strace sees this process's calls.
LAUNCHER = f"""
import socket, sys, time
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect(("127.0.0.1", 9))
probe.close()
from bridge.cli import main
try:
    main(prog_name="coursegen")
except SystemExit as done:
    code = done.code
else:
    code = 0
time.sleep({LINGER_S})
sys.exit(code)
"""
# Inside the namespace: bring lo up, refuse to go on unless lo is the only link, then trace.
IN_NAMESPACE = (
    'ip link set lo up && [ "$(ip -o link show | wc -l)" = 1 ] || '
    '{ echo "not a loopback-only namespace" >&2; exit 97; }; '
    'exec strace -f -qq -s 0 -e "$0" -o "$1" "$2" -c "$3" run "$4" --data "$5" --out "$6"'
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _unshare() -> list[str]:
    """unshare -n (as root) or unshare -rn (mapped to root in a user namespace), if it works."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install util-linux strace iproute2)")
    command = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    probe = subprocess.run([*command, "true"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace ({' '.join(command)}): {probe.stderr}")
    return command


def test_offline_run_completes_with_no_connection_off_the_machine(tmp_path: Path) -> None:
    unshare = _unshare()
    trace, data, out = tmp_path / "net.trace", tmp_path / "data", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in PRODUCT_SWITCHES}
    args = [STRACE_FILTER, trace, sys.executable, LAUNCHER, SAMPLE, data, out]
    started = time.monotonic()
    done = subprocess.run(
        [*unshare, "sh", "-c", IN_NAMESPACE, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"exit {done.returncode} after {elapsed:.0f} s:\n{done.stderr}"

    course = json.loads((out / "course.json").read_text())
    assert course["generated_by"]["transcribe"] == "offline"
    lessons = [lesson for module in course["modules"] for lesson in module["lessons"]]
    assert lessons and all(lesson["transcript"].strip() for lesson in lessons)

    log = trace.read_text()
    probe = [d for d in destinations(log) if d.family == "AF_INET" and d.address == "127.0.0.1"]
    assert probe, "strace recorded no loopback probe: the trace is not of this run"
    outside = leaving(log)
    assert not outside, "reached for the network:\n" + "\n".join(d.line for d in outside)
