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

A unit may also answer later (``unit(then=...)``, the threaded local queue's deliveries): it
does not wait for its fsync. What it must not do before its commits are durable (a dispatch:
``when_durable``; its answer: ``then``) is queued, and the file's syncer thread runs it after
the fsync that covers the unit: units of different courses that end while one fsync runs share
the next one (group commit), and the worker that ran the unit is free meanwhile. An fsync that
fails is fatal to the units it would have covered: they never answer nor dispatch (as if the
process had died there), and the error is logged.

A sync of the WAL file flushes every frame written to it so far, by any connection or process.
The ``-wal`` file is opened afresh for each sync because SQLite deletes it when the last
connection closes (after a checkpoint that syncs the database); the directory is synced once
per WAL file so a newly created WAL's name is durable too, as SQLite does for FULL.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("coursegen.store")

_unit = threading.local()  # nested units on this thread: depth, files written, queued actions
_SYNCER_IDLE_S = 5.0  # a syncer thread ends after this long with nothing to sync

Action = Callable[[], None]


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
        self._later = threading.Condition()  # units waiting for the syncer: (target, actions)
        self._queued: list[tuple[int, list[Action]]] = []
        self._syncer: threading.Thread | None = None
        self._running = 0  # batches taken by the syncer and not yet run

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

    def after_sync(self, actions: list[Action]) -> None:
        """Run ``actions`` once every commit made so far is durable, on the syncer thread."""
        with self._lock:
            target = self._written
        with self._later:
            self._queued.append((target, actions))
            if self._syncer is None:
                self._syncer = threading.Thread(
                    target=self._sync_later, name="coursegen-wal-sync", daemon=True
                )
                self._syncer.start()
            else:
                self._later.notify()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every unit handed to the syncer has been synced and its actions run."""
        with self._later:
            return self._later.wait_for(lambda: not self._queued and not self._running, timeout)

    def _sync_later(self) -> None:
        while True:
            with self._later:
                if not self._queued:
                    self._later.notify_all()  # ``drain``
                    self._later.wait(timeout=_SYNCER_IDLE_S)
                    if not self._queued:
                        self._syncer = None
                        return
                batch, self._queued = self._queued, []
                self._running += 1
            try:
                self.sync()  # covers every target queued: each was read before this began
            except OSError:
                log.critical("fsync of %s failed: %d units never answer", self.wal, len(batch))
                batch = []
            try:
                for _, actions in batch:
                    for action in actions:
                        _run(action)
            finally:
                with self._later:
                    self._running -= 1

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


def later() -> bool:
    """Whether this thread is inside a unit that answers later (``unit(then=...)``)."""
    return active() and _unit.later


@contextmanager
def unit(then: Action | None = None) -> Iterator[None]:
    """A unit of work on this thread: its commits are synced once, when the outermost ends.

    With ``then`` (on the outermost unit) the unit does not wait for that sync: ``then`` and
    the unit's ``when_durable`` actions run after it, on the syncer thread (at once if the unit
    committed nothing); ``then`` only if the unit ended without an exception."""
    outermost = not active()
    if outermost:
        _unit.depth, _unit.files, _unit.actions = 0, set(), []
        _unit.later = then is not None
    _unit.depth += 1
    ended = False
    try:
        yield
        ended = True
    finally:
        _unit.depth -= 1
        if then is not None and ended:
            _unit.actions.append(then)
        if outermost:
            files, actions = _unit.files, _unit.actions
            _unit.files, _unit.actions = None, None
            _end(files, actions, later=_unit.later)


def when_durable(action: Action, wal: WalSync | None) -> None:
    """Run ``action`` once every commit made so far is durable: queued to the end of a unit
    that answers later, else after a sync of ``wal`` (None: every commit is durable).

    Every commit of the process, not just this thread's: what is dispatched may have been
    scheduled by another thread whose unit has not synced yet, so the unit that dispatches
    waits for a sync of ``wal`` even if it committed nothing itself."""
    if later():
        _unit.actions.append(action)
        if wal is not None:
            _unit.files.add(wal)
        return
    if wal is not None:
        wal.sync()
    action()


def _end(files: set[WalSync], actions: list[Action], *, later: bool) -> None:
    if not later or not files:
        for wal in files:
            wal.sync()
        for action in actions:
            _run(action)
        return
    *others, last = files
    for wal in others:  # a unit across two database files (rare): all but one synced now
        wal.sync()
    last.after_sync(actions)


def _run(action: Action) -> None:
    try:
        action()
    except Exception:  # one unit's answer or dispatch must not stop the others'
        log.exception("an action after a WAL sync failed")


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
