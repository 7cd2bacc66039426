"""Deferred WAL sync: one fsync per unit of work instead of one per commit.

With ``synchronous=FULL`` SQLite fsyncs the WAL at every commit. A task delivery commits two or
three times (TaskStarted, the result, the tasks it unblocks) before it answers, and only the
answer (or a dispatch) tells anyone outside this process what happened. Inside a unit
(``SqliteStore.deferring()``) commits run with ``synchronous=NORMAL``: each is atomic and
survives a crash of the process (the WAL is in the OS's page cache), and the unit fdatasyncs
the WAL once before it ends and before every dispatch (``SqliteStore.sync()``). So everything
anyone was told about is on disk, as with FULL; a power cut can lose only commits of a unit
that had not yet answered or dispatched: a delivery that Cloud Tasks (or the local queue, which
dies with the power) will make again. Outside a unit every commit is synced as before.

A sync of the WAL file flushes every frame written to it so far, by any connection or process.
The ``-wal`` file is opened afresh for each sync because SQLite deletes it when the last
connection closes (after a checkpoint that syncs the database); the directory is synced once
per WAL file so a newly created WAL's name is durable too, as SQLite does for FULL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_unit = threading.local()  # depth of nested units on this thread, and the files they wrote


class WalSync:
    """One database file's deferred commits in this process, and the syncs that cover them."""

    def __init__(self, path: str) -> None:
        self.wal = f"{path}-wal"
        self.directory = str(Path(path).parent)
        self._lock = threading.Lock()
        self._written = 0  # deferred commits so far
        self._synced = 0  # deferred commits known to be on disk
        self._wal_inode: int | None = None
        self._turn = threading.Condition()  # one sync at a time
        self._syncing = False
        self.syncs = 0  # for `coursegen bench` and tests

    def committed(self) -> None:
        with self._lock:
            self._written += 1
        files: set[WalSync] | None = getattr(_unit, "files", None)
        if files is not None:
            files.add(self)

    def pending(self) -> int:
        with self._lock:
            return self._written - self._synced

    def sync(self) -> None:
        """Make every deferred commit made so far durable (a no-op when there is none).

        One sync at a time: a caller that finds one running waits for it, and then has
        nothing left to do if its commits were made before that sync began; otherwise it
        syncs, covering every commit made meanwhile (group commit of the fsyncs)."""
        with self._turn:
            while self._syncing:
                self._turn.wait()
            with self._lock:
                target = self._written
                if target <= self._synced:
                    return
            self._syncing = True
        try:
            self._fdatasync()
            with self._lock:
                self._synced = max(self._synced, target)
                self.syncs += 1
        finally:
            with self._turn:
                self._syncing = False
                self._turn.notify_all()

    def _fdatasync(self) -> None:
        try:
            fd = os.open(self.wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed into the database and removed, which SQLite synced
        try:
            os.fdatasync(fd)
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        if inode != self._wal_inode:
            _sync_directory(self.directory)
            self._wal_inode = inode


def active() -> bool:
    """Whether this thread is inside a unit of work."""
    return getattr(_unit, "depth", 0) > 0


@contextmanager
def unit() -> Iterator[None]:
    """A unit of work on this thread: its commits are synced once, when the outermost ends."""
    outermost = not active()
    if outermost:
        _unit.depth, _unit.files = 0, set()
    _unit.depth += 1
    try:
        yield
    finally:
        _unit.depth -= 1
        if outermost:
            files, _unit.files = _unit.files, None
            for wal in files:
                wal.sync()


def _sync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_FILES: dict[str, WalSync] = {}
_FILES_LOCK = threading.Lock()


def for_file(path: str) -> WalSync:
    """The one ``WalSync`` of a database file in this process."""
    key = str(Path(path).resolve())
    with _FILES_LOCK:
        return _FILES.setdefault(key, WalSync(key))
