"""The rule of tests/unit, enforced: no processes, no media tools.

A unit test runs in this process only: no subprocess (so no ffmpeg, tesseract, espeak or a
second Python), no fork, no multiprocessing, no Whisper model, no read of the committed sample
media. It may use threads, loopback sockets (the HTTP stubs), and ``tmp_path`` for small files
made in the test (a SQLite event store of a few courses, a few kB of images or JSON). A test that
needs more belongs in tests/integration/ (docs/testing.md).

While a test under tests/unit sets up, runs and tears down (its fixtures of every scope
included), starting a process raises ``ProcessInUnitTest`` naming the call.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import platform
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Library lookups that shell out once per process and then cache their answer, done here
# before any test is guarded: platform.processor() runs `uname -p` (the openai SDK's request
# headers ask for it), and cairocffi finds libcairo with ldconfig and gcc when imported.
platform.processor()
with contextlib.suppress(ImportError, OSError):
    import cairosvg  # noqa: F401


class ProcessInUnitTest(RuntimeError):
    """A unit test tried to start a process; it belongs in tests/integration."""


def _refuse(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        shown = repr(args[1]) if name == "subprocess.Popen" and len(args) > 1 else ""
        raise ProcessInUnitTest(
            f"{name}({shown}) in a unit test: tests/unit runs no processes and no media "
            "tools; move the test to tests/integration (docs/testing.md)"
        )

    return refuse


# Popen._execute_child is where every Popen starts its child (subprocess.run, check_output,
# asyncio's subprocesses, `from subprocess import Popen` alike); os.fork also covers os.spawn*
# and multiprocessing's fork start method, spawnv_passfds its spawn and forkserver methods.
_DOORS: tuple[tuple[Any, str, str], ...] = (
    (subprocess.Popen, "_execute_child", "subprocess.Popen"),
    (os, "fork", "os.fork"),
    (os, "forkpty", "os.forkpty"),
    (os, "posix_spawn", "os.posix_spawn"),
    (os, "posix_spawnp", "os.posix_spawnp"),
    (os, "system", "os.system"),
    (multiprocessing.util, "spawnv_passfds", "multiprocessing spawn"),
)


@contextlib.contextmanager
def no_processes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for owner, attribute, name in _DOORS:
            if hasattr(owner, attribute):
                patch.setattr(owner, attribute, _refuse(name))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with no_processes():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with no_processes():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    with no_processes():
        return (yield)
