"""SQLite EventStore, the embedded default: WAL, one write transaction per append.

Durability: ``synchronous=FULL`` (the default) fsyncs the WAL at every commit, so an
acknowledged append survives a power cut; inside a unit of work (``deferring()``, see
``wal_sync``) one fsync is made before the unit answers or dispatches anything, instead.
``NORMAL`` fsyncs only at checkpoints: an acknowledged append can be lost on power loss
(never on a process crash), and the database stays consistent either way. Appends serialise
on SQLite's single writer lock.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statemachine.envelope import Envelope, Loads, NewEvent, StoredEvents, StoredRow, decode
from statemachine.errors import IntegrityError
from statemachine.lifecycle import ACTIVE_COURSE
from statemachine.ports import EventStore, Head, Tombstone
from statemachine.store import wal_sync
from statemachine.store.appending import (
    FollowUp,
    Prepared,
    Rebase,
    must_purge,
    prepare_append,
    then_at_exit,
)
from statemachine.store.task_rows import TASK_COLUMNS, task_rows, touched_tasks

try:  # orjson decodes the stored canonical JSON ~3x faster; the result is identical
    import orjson

    _loads: Loads = orjson.loads

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    _loads = json.loads

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    course_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    occurred_at TEXT    NOT NULL,
    body        BLOB    NOT NULL,  -- canonical JSON of the envelope without its hash
    hash        TEXT    NOT NULL,
    PRIMARY KEY (course_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS courses (
    course_id  TEXT PRIMARY KEY,
    status     TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    last_hash  TEXT    NOT NULL,
    updated_at TEXT,
    variant    TEXT,
    snapshot   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS courses_by_status_updated ON courses (status, updated_at);
CREATE TABLE IF NOT EXISTS tombstones (  -- courses purged after archiving (``purge``)
    course_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    last_hash TEXT    NOT NULL,
    location  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (  -- task status projection (store/projection.py)
    course_id   TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    shard       INTEGER,
    status      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    variant     TEXT,
    error_type  TEXT,
    last_error  TEXT,
    queued_at   TEXT,
    started_at  TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    cost_usd    REAL    NOT NULL,
    PRIMARY KEY (course_id, task)
) WITHOUT ROWID;
"""

_UPSERT_TASK = (
    f"INSERT OR REPLACE INTO tasks ({', '.join(TASK_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in TASK_COLUMNS)})"
)
_UPSERT_HEAD = (
    "INSERT INTO courses (course_id, status, version, last_hash, updated_at,"
    " variant, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (course_id) DO UPDATE SET status = excluded.status,"
    " version = excluded.version, last_hash = excluded.last_hash,"
    " updated_at = excluded.updated_at, variant = excluded.variant,"
    " snapshot = excluded.snapshot"
)

_ACTIVE = tuple(sorted(ACTIVE_COURSE))
_IN_ACTIVE = "status IN (" + ", ".join("?" * len(_ACTIVE)) + ")"  # one ? per active status


class SqliteStore:
    def __init__(self, path: str | Path = ":memory:", *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        self._shared_lock = threading.RLock()
        self._wal: wal_sync.WalSync | None = None
        self._writer: _WriterLock | None = None  # None: :memory: (one connection, one lock)
        if self.path == ":memory:":
            # One connection for all threads: each :memory: connection is its own database.
            self._shared = self._open()
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _writer_lock(self.path)
            if self.synchronous != "NORMAL":  # NORMAL never fsyncs commits: nothing to defer
                self._wal = wal_sync.for_file(self.path)
        # Another process may be creating the same file: switching a new database to WAL
        # can fail at once as "locked" (SQLite's busy handler is not asked), so the first
        # connection and the schema are made under the writer lock of every process.
        with self._writer or nullcontext(), self._conn() as conn:
            conn.executescript(SCHEMA)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _conn(self) -> _Borrowed:
        if self._shared is not None:
            return _Borrowed(self._shared, self._shared_lock)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn, self._local.mode = conn, self.synchronous
        return _Borrowed(conn, None)

    def deferring(self, then: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        """A unit of work on this thread: its appends are fsynced once, when it ends (and at
        every ``sync``), instead of at each commit. With ``then`` it does not wait for that
        fsync: ``then`` runs once it is done (``wal_sync.unit``)."""
        if self._wal is not None:
            return wal_sync.unit(then)
        return then_at_exit(then) if then is not None else nullcontext()

    def when_durable(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a dispatch) once every append this thread committed is durable."""
        wal_sync.when_durable(action, self._wal)

    def sync(self) -> None:
        """Make every append committed so far durable; call before telling anyone of it."""
        if self._wal is not None:
            self._wal.sync()

    def _synchronous(self, conn: sqlite3.Connection, mode: str) -> None:
        if self._local.mode != mode:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._local.mode = mode

    def close(self) -> None:
        if self._wal is not None:
            self._wal.drain()
        self.sync()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, ``ROLLBACK`` on any
        error), as durable as this thread asks: synced by SQLite, or left to the unit."""
        deferred = self._wal is not None and wal_sync.active()
        # Writers of this process take turns here, not in SQLite's busy handler (which sleeps
        # 1 to 100 ms between tries); other processes still meet the busy timeout.
        with self._conn() as conn, self._writer or nullcontext():
            if self._shared is None:  # this thread's last write may have left it NORMAL
                self._synchronous(conn, "NORMAL" if deferred else self.synchronous)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if deferred:
            assert self._wal is not None
            self._wal.committed()

    def append(
        self,
        course_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        then: FollowUp | None = None,
        rebase: Rebase | None = None,
    ) -> int:
        # Prepared (sealed, validated, folded, follow-ups decided) before the database's
        # writer lock, so the writers of several processes do their Python work at the same
        # time. This process's appends to one course take turns on its course lock; under the
        # writer lock only the head's (version, hash) is read again, and the append prepared
        # again from the new head if another process moved it meanwhile.
        with self._course_lock(course_id):
            with self._conn() as conn:
                row = conn.execute(
                    "SELECT snapshot FROM courses WHERE course_id = ?", (course_id,)
                ).fetchone()
            current = _loads(row[0]) if row else None
            seen = (current["version"], current["last_hash"]) if current else None
            prepared = prepare_append(
                course_id, current, expected_version, events, then=then, rebase=rebase
            )
            job = _Append(course_id, expected_version, events, then, rebase, seen, prepared)
            deferred = self._wal is not None and wal_sync.active()
            job.mode = "NORMAL" if deferred else self.synchronous
            if self._writer is None:
                with self._writing() as conn:
                    job.write(conn)
            else:
                # Group commit of the transactions: appends that wait for the writer lock
                # together are written in one transaction by whichever of them gets it.
                self._writer.commit(job, self._write_batch)
                if job.error is None and deferred:
                    assert self._wal is not None
                    self._wal.committed()
            if job.error is not None:
                raise job.error
            assert job.prepared is not None
            return job.prepared.version

    def _write_batch(self, jobs: list[_Append]) -> None:
        """Write ``jobs`` in one transaction (the writer lock is held), each checked against
        the head as it is now; a job whose check or preparation fails gets its error and the
        others are written. If the transaction itself fails, each job is written alone."""
        mode = max((j.mode for j in jobs), key=_STRENGTH.__getitem__)
        try:
            with self._conn() as conn:
                self._synchronous(conn, mode)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for job in jobs:
                        job.write(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error:
            if len(jobs) == 1:
                raise
            for job in jobs:  # one job's rows (or the commit) failed: find which, alone
                job.error = None
                try:
                    self._write_batch([job])
                except sqlite3.Error as err:
                    job.error = err

    def _course_lock(self, course_id: str) -> AbstractContextManager[Any]:
        if self._writer is None:
            return nullcontext()  # :memory: has one connection, and its lock
        return self._writer.course(course_id)

    def replace_projections(self, course_id: str, snapshot: Mapping[str, Any]) -> bool:
        with self._writing() as conn:
            row = conn.execute(
                "SELECT MAX(version) FROM events WHERE course_id = ?", (course_id,)
            ).fetchone()
            if (row[0] or 0) != snapshot["version"]:
                return False  # nothing written: the empty transaction just ends
            conn.execute("DELETE FROM tasks WHERE course_id = ?", (course_id,))
            _write_projections(conn, snapshot, None)
        return True

    def purge(self, course_id: str, *, version: int, last_hash: str, location: str) -> bool:
        """One transaction: the events, the head and the task rows go, the tombstone comes."""
        with self._writing() as conn:
            row = conn.execute(
                "SELECT version, last_hash, status FROM courses WHERE course_id = ?", (course_id,)
            ).fetchone()
            if not must_purge(course_id, row, self._tombstone(conn, course_id), version, last_hash):
                return False
            for table in ("events", "tasks", "courses"):
                conn.execute(f"DELETE FROM {table} WHERE course_id = ?", (course_id,))
            conn.execute(
                "INSERT INTO tombstones (course_id, version, last_hash, location)"
                " VALUES (?, ?, ?, ?)",
                (course_id, version, last_hash, location),
            )
        return True

    def tombstone(self, course_id: str) -> Tombstone | None:
        with self._conn() as conn:
            return self._tombstone(conn, course_id)

    @staticmethod
    def _tombstone(conn: sqlite3.Connection, course_id: str) -> Tombstone | None:
        row = conn.execute(
            "SELECT course_id, version, last_hash, location FROM tombstones WHERE course_id = ?",
            (course_id,),
        ).fetchone()
        return Tombstone(*row) if row else None

    def tombstones(self, *, incomplete: bool = False) -> Sequence[Tombstone]:
        if incomplete:
            return []  # a purge is one transaction here: it never stops half-way
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT course_id, version, last_hash, location FROM tombstones ORDER BY course_id"
            ).fetchall()
        return [Tombstone(*r) for r in rows]

    def tasks(self, course_id: str) -> Sequence[Mapping[str, Any]]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE course_id = ? ORDER BY task",
                (course_id,),
            ).fetchall()
        return [dict(zip(TASK_COLUMNS, r, strict=True)) for r in rows]

    def all_tasks(self) -> Iterator[Mapping[str, Any]]:
        with self._conn() as conn:
            cursor = conn.execute(
                f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks ORDER BY course_id, task"
            )
            while rows := cursor.fetchmany(8192):
                for r in rows:
                    yield dict(zip(TASK_COLUMNS, r, strict=True))

    def load(
        self, course_id: str, *, after: int = 0, until: int | None = None
    ) -> Sequence[Envelope]:
        upper = until if until is not None else 2**62
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT version, body, hash FROM events WHERE course_id = ? AND version > ?"
                " AND version <= ? ORDER BY version",
                (course_id, after, upper),
            ).fetchall()
        return [_decode(course_id, v, body, h) for v, body, h in rows]

    def head(self, course_id: str) -> Head | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT course_id, status, version, last_hash, updated_at, variant, snapshot"
                " FROM courses WHERE course_id = ?",
                (course_id,),
            ).fetchone()
        return _head(row) if row else None

    def courses(self, *, status: str | None = None, limit: int | None = None) -> Sequence[Head]:
        sql = (
            "SELECT course_id, status, version, last_hash, updated_at, variant, snapshot"
            " FROM courses"
        )
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY updated_at DESC, course_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [_head(r) for r in rows]

    def quiet(self, before: str, *, limit: int = 1000) -> Sequence[str]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT course_id FROM courses WHERE {_IN_ACTIVE} AND updated_at < ?"
                " ORDER BY updated_at LIMIT ?",
                (*_ACTIVE, before, limit),
            ).fetchall()
        return [r[0] for r in rows]

    def moved(self, since: str, *, limit: int = 1000) -> Sequence[tuple[str, int]]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT course_id, version FROM courses WHERE {_IN_ACTIVE}"
                " AND updated_at >= ? ORDER BY updated_at LIMIT ?",
                (*_ACTIVE, since, limit),
            ).fetchall()
        return [(r[0], int(r[1])) for r in rows]

    def scan(
        self, *, lo: str | None = None, hi: str | None = None
    ) -> Iterator[tuple[str, Sequence[Envelope]]]:
        """Every history (with course ids in [lo, hi) when given), course by course, each as
        its stored rows (``StoredEvents``: decoded when first read as envelopes; the audit
        verifies the rows without decoding them)."""
        where, args = _id_range(lo, hi)
        with self._conn() as conn:
            cursor = conn.execute(
                f"SELECT course_id, version, body, hash FROM events{where}"
                " ORDER BY course_id, version",
                args,
            )
            current: str | None = None
            batch: list[StoredRow] = []
            while rows := cursor.fetchmany(8192):
                for row in rows:
                    if row[0] != current:
                        if current is not None:
                            yield current, StoredEvents(current, batch, _loads)
                        current, batch = row[0], []
                    batch.append(row)
            if current is not None:
                yield current, StoredEvents(current, batch, _loads)

    def scan_heads(
        self, *, lo: str | None = None, hi: str | None = None
    ) -> Iterator[tuple[str, Sequence[Envelope], Head | None]]:
        """``scan`` with each course's head, read in step (no dict of every head in memory).

        Each head's snapshot stays its stored bytes until read (``RawSnapshot``): an audit
        compares it with the fold by those bytes (``same_snapshot``)."""
        where, args = _id_range(lo, hi)
        with self._conn() as conn:
            heads = conn.execute(
                "SELECT course_id, status, version, last_hash, updated_at, variant, snapshot"
                f" FROM courses{where} ORDER BY course_id",
                args,
            )
            pending = heads.fetchone()
            for course_id, events in self.scan(lo=lo, hi=hi):
                while pending is not None and pending[0] < course_id:
                    pending = heads.fetchone()
                head = None
                if pending is not None and pending[0] == course_id:
                    cid, status, version, last_hash, updated_at, variant, raw = pending
                    snapshot = RawSnapshot(raw)
                    head = Head(cid, status, version, last_hash, updated_at, variant, snapshot)
                yield course_id, events, head

    def course_ids(self, *, lo: str | None = None, hi: str | None = None) -> list[str]:
        """The ids of every course head (in [lo, hi) when given), in the order of ``courses``,
        without reading the snapshots."""
        where, args = _id_range(lo, hi)
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT course_id FROM courses{where} ORDER BY updated_at DESC, course_id", args
            )
            return [r[0] for r in rows]

    def id_ranges(self, parts: int) -> list[tuple[str | None, str | None]]:
        """About ``parts`` ranges [lo, hi) of course ids, of similar sizes, that together
        cover every possible id (None: unbounded)."""
        ids = sorted(self.course_ids())
        cuts = dict.fromkeys(ids[len(ids) * i // parts] for i in range(1, parts)) if ids else {}
        bounds: list[str | None] = [None, *cuts, None]
        return list(itertools.pairwise(bounds))

    def same_snapshot(self, stored: Mapping[str, Any], folded: Mapping[str, Any]) -> bool:
        return same_snapshot(stored, folded)

    def reopener(self) -> Callable[[], EventStore] | None:
        if self.path == ":memory:":
            return None
        return functools.partial(SqliteStore, self.path, synchronous=self.synchronous)

    def heads(self) -> dict[str, Head]:
        """Every head, by course id (one query, for audits)."""
        return {h.course_id: h for h in self.courses()}


_WRITERS: dict[str, _WriterLock] = {}
_WRITERS_LOCK = threading.Lock()


def _writer_lock(path: str) -> _WriterLock:
    """The one writer lock of a database file in this process (every store open on it)."""
    key = str(Path(path).resolve())
    with _WRITERS_LOCK:
        lock = _WRITERS.get(key)
        if lock is None or lock.pid != os.getpid():  # a forked child opens its own
            lock = _WRITERS[key] = _WriterLock(key + WRITER_LOCK_SUFFIX)
        return lock


COURSE_STRIPES = 256
WRITER_LOCK_SUFFIX = "-writer"  # beside the database: the lock file writers of all processes take


class _WriterLock:
    """The writers of one database file, in this process and in others: a thread lock, then
    an exclusive ``flock`` on a file beside the database (the kernel wakes the next waiter
    when it is released, where SQLite's busy handler would sleep 1 to 100 ms between tries).
    Taken before ``BEGIN IMMEDIATE``, released after ``COMMIT``; a process that dies holding it
    releases it with its file descriptor."""

    def __init__(self, path: str) -> None:
        self.pid = os.getpid()
        self._thread = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._courses = [threading.Lock() for _ in range(COURSE_STRIPES)]
        self._queued: list[_Append] = []  # appends waiting for the lock (``commit``)
        self._queued_lock = threading.Lock()

    def course(self, course_id: str) -> threading.Lock:
        """The lock this process's appends to ``course_id`` take turns on (one of a fixed
        set: two courses may share one), held while an append is prepared and written."""
        return self._courses[hash(course_id) % COURSE_STRIPES]

    def commit(self, job: _Append, write: Callable[[list[_Append]], None]) -> None:
        """Have ``job`` written: by this thread, with every job queued meanwhile, once it holds
        the lock, or by the thread that held it and took this job into its transaction. On
        return the job is committed or has its ``error``."""
        with self._queued_lock:
            self._queued.append(job)
        with self._thread:
            if job.done:
                return  # written by the thread before, in its transaction
            with self._queued_lock:
                jobs, self._queued = self._queued, []
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    write(jobs)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except Exception as err:  # each owner raises it (nothing of the batch committed)
                for j in jobs:
                    j.error = j.error or err
            except BaseException:  # Ctrl-C in this thread: the others learn of it too
                for j in jobs:
                    j.error = j.error or RuntimeError("interrupted while writing")
                raise
            finally:
                for j in jobs:
                    j.done = True

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


_STRENGTH = {"NORMAL": 0, "FULL": 1, "EXTRA": 2}  # a batch commits as its strongest job asks


class _Append:
    """One append on its way to the database: prepared on the head as read before the lock
    (``seen``: its (version, last hash), None for a new course)."""

    __slots__ = (
        "course_id",
        "done",
        "error",
        "events",
        "expected",
        "mode",
        "prepared",
        "rebase",
        "seen",
        "then",
        "writes",
    )

    def __init__(
        self,
        course_id: str,
        expected: int,
        events: Sequence[NewEvent],
        then: FollowUp | None,
        rebase: Rebase | None,
        seen: tuple[int, str] | None,
        prepared: Prepared,
    ) -> None:
        self.course_id = course_id
        self.expected = expected
        self.events = events
        self.then = then
        self.rebase = rebase
        self.seen = seen
        self.prepared: Prepared | None = prepared
        self.writes = _Writes.of(prepared)  # made before the lock, like the preparation
        self.mode = "FULL"  # the synchronous setting its commit needs
        self.error: Exception | None = None
        self.done = False

    def write(self, conn: sqlite3.Connection) -> None:
        """Its rows, inside the writer's transaction: prepared again first if the head moved
        since it was read (an error of that preparation is this job's, not the batch's)."""
        row = conn.execute(
            "SELECT version, last_hash FROM courses WHERE course_id = ?", (self.course_id,)
        ).fetchone()
        if (tuple(row) if row else None) != self.seen:
            moved = conn.execute(
                "SELECT snapshot FROM courses WHERE course_id = ?", (self.course_id,)
            ).fetchone()
            current = _loads(moved[0]) if moved else None
            try:
                self.prepared = prepare_append(
                    self.course_id,
                    current,
                    self.expected,
                    self.events,
                    then=self.then,
                    rebase=self.rebase,
                )
            except Exception as err:  # the owner raises it
                self.prepared, self.error = None, err
                return
            self.seen = (current["version"], current["last_hash"]) if current else None
            self.writes = _Writes.of(self.prepared)
        self.writes.run(conn)


@dataclass(frozen=True, slots=True)
class _Writes:
    """The rows an append writes, made before the writer lock is taken."""

    events: list[tuple[Any, ...]]
    head: tuple[Any, ...]
    tasks: list[tuple[Any, ...]]

    @classmethod
    def of(cls, prepared: Prepared) -> _Writes:
        s = prepared.snapshot
        events = [
            (s["course_id"], e.version, e.type, e.occurred_at, e.raw, e.hash)
            for e in prepared.envelopes
        ]
        head, tasks = _projection_rows(s, touched_tasks(prepared.envelopes))
        return cls(events, head, tasks)

    def run(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO events (course_id, version, type, occurred_at, body, hash)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            self.events,
        )
        conn.execute(_UPSERT_HEAD, self.head)
        if self.tasks:
            conn.executemany(_UPSERT_TASK, self.tasks)


def _write_projections(
    conn: sqlite3.Connection, s: Mapping[str, Any], names: set[str] | None
) -> None:
    """The head row and the task rows of ``names`` (every task when None), from snapshot ``s``."""
    head, tasks = _projection_rows(s, names)
    conn.execute(_UPSERT_HEAD, head)
    if tasks:
        conn.executemany(_UPSERT_TASK, tasks)


def _projection_rows(
    s: Mapping[str, Any], names: set[str] | None
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The head row of snapshot ``s`` and its task rows of ``names`` (every task when None)."""
    head = (s["course_id"], s["status"], s["version"], s["last_hash"], s["updated_at"])
    tasks = [tuple(r[c] for c in TASK_COLUMNS) for r in task_rows(s, names)]
    return (*head, s["variant"], _dumps(s)), tasks


def _decode(course_id: str, version: int, body: bytes, stored_hash: str) -> Envelope:
    try:
        return decode(bytes(body), stored_hash, _loads)
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(course_id, version, "stored bytes are not a valid envelope") from None


def _id_range(lo: str | None, hi: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    if lo is not None:
        clauses.append("course_id >= ?")
        args.append(lo)
    if hi is not None:
        clauses.append("course_id < ?")
        args.append(hi)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


class RawSnapshot(Mapping[str, Any]):
    """A head's snapshot as stored, parsed on first read."""

    __slots__ = ("_parsed", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._parsed: dict[str, Any] | None = None

    def _doc(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = _loads(self.raw)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._doc()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc())

    def __len__(self) -> int:
        return len(self._doc())


def same_snapshot(stored: Mapping[str, Any], acc: Mapping[str, Any]) -> bool:
    """Whether a stored snapshot equals the fold ``acc``: by bytes when the snapshot is still
    the bytes this store wrote (the encoding is deterministic and keeps key order), else as
    parsed documents (a head written with another key order still compares equal)."""
    if isinstance(stored, RawSnapshot):
        try:
            if _dumps(acc) == stored.raw:
                return True
        except TypeError:  # not encodable as this store writes: compare the documents
            pass
    return dict(stored) == acc


def _head(row: tuple[Any, ...]) -> Head:
    return Head(row[0], row[1], row[2], row[3], row[4], row[5], _loads(row[6]))


class _Borrowed:
    """A connection for one ``with`` block, holding the shared lock for :memory: stores."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock | None) -> None:
        self.conn = conn
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        if self.lock is not None:
            self.lock.acquire()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()
