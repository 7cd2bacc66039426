"""Process groups of the local cloud: start one per piece, find it again, stop only it.

Each piece runs in a session and process group of its own (pid == pgid), so stopping the
group stops its children too (a shell script's Java, a gunicorn worker). A recorded group is
signalled only while it is provably the one started: its leader still has the start time
recorded (Linux /proc), or the leader is gone but members remain (then the id cannot have
been reused: Linux does not hand out a pid that is still a group's id).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests


class StartFailed(RuntimeError):
    """A piece did not start or did not answer in time; the message names its log."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Proc:
    name: str
    pgid: int
    started: int  # the leader's start time, clock ticks since boot (/proc/PID/stat field 22)
    argv: tuple[str, ...]
    log: str
    port: int | None = None
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Proc:
        return cls(**{**raw, "argv": tuple(raw["argv"])})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> tuple[int, int] | None:
    """(process group, start time) of ``pid``, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return int(fields[2]), int(fields[19])


def members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] == pgid:
                found.append(int(entry.name))
    return found


def ours(proc: Proc) -> list[int]:
    """The live members of ``proc``'s group if it is still the group we started, else []."""
    leader = _stat(proc.pgid)
    if leader is not None and leader[1] != proc.started:
        return []  # the id now names someone else's process
    return members(proc.pgid)


def launch(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    cwd: Path,
    port: int | None = None,
    url: str | None = None,
) -> Proc:
    """Start ``argv`` in a new session (its own process group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stat = _stat(child.pid)
    if stat is None:
        raise StartFailed(f"{name} exited at once (log: {log})")
    return Proc(
        name=name,
        pgid=child.pid,
        started=stat[1],
        argv=tuple(argv),
        log=str(log),
        port=port,
        url=url,
    )


def stop(proc: Proc, *, grace_s: float = 5.0) -> bool:
    """SIGTERM the group, SIGKILL what is left after ``grace_s``; whether it was running."""
    if not live(proc):
        return False
    signal_group(proc, signal.SIGTERM)
    if not _gone(proc, grace_s):
        signal_group(proc, signal.SIGKILL)
        _gone(proc, 5.0)
    return True


def signal_group(proc: Proc, sig: int) -> bool:
    """Send ``sig`` to the group if it is still ours; whether it was sent."""
    if not ours(proc):
        return False
    try:
        os.killpg(proc.pgid, sig)
    except ProcessLookupError:
        return False
    _reap(proc.pgid)
    return True


def _reap(pid: int) -> None:
    """Collect the leader's exit status if this process started it (no zombie left)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _gone(proc: Proc, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        _reap(proc.pgid)
        if not live(proc):
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return text[text.rindex(")") + 2 :].split()[0] == "Z"


def live(proc: Proc) -> list[int]:
    """The members of ``proc``'s group that have not exited (an exited child of a parent
    that has not reaped it yet still holds the group's id, but runs nothing)."""
    return [p for p in ours(proc) if not _zombie(p)]


def running(proc: Proc) -> bool:
    return bool(live(proc))


def wait_answering(procs: Sequence[Proc], timeout_s: float) -> None:
    """Until every ``url`` answers HTTP (any status) and every ``port`` accepts connections."""
    deadline = time.monotonic() + timeout_s
    pending = list(procs)
    while pending:
        proc = pending[0]
        if not running(proc):
            raise StartFailed(f"{proc.name} exited while starting (log: {proc.log})")
        if _answers(proc):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise StartFailed(
                f"{proc.name} did not answer within {timeout_s:.0f} s (log: {proc.log})"
            )
        time.sleep(0.2)


def _answers(proc: Proc) -> bool:
    if proc.url is not None:
        try:
            requests.get(proc.url, timeout=5)
        except requests.RequestException:
            return False
        return True
    if proc.port is not None:
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=2):
                return True
        except OSError:
            return False
    return True
