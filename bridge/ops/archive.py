"""Retention: ended courses' histories archived as verified JSONL, then purged from the store.

An archive is ``replay --export jsonl`` (one envelope a line, with the stored bytes its hash
covers) and a last line ``{"trailer": {...}}``: format, course id, event count, final hash,
final status and the head snapshot, so it verifies offline (``audit --archive FILE``).

Per course, in this order, so that a crash at any point loses nothing and duplicates nothing:
1. verify the live history (a broken one is reported, never archived);
2. write the archive durably and atomically (``archive_targets``), unless the target already
   holds a verified archive of this very ending (same version and final hash): then reuse it;
3. read it back and verify it against the live head;
4. purge the course from the store, leaving a tombstone naming the archive (one transaction;
   it checks the course is still at that version and hash, so a course redriven meanwhile
   is kept, and its archive replaced by the next run).
A re-run after a crash finds the archive of step 2 (reused) or the tombstone of step 4 (done);
purges left half-way (Firestore, long histories) are finished first.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.ops.archive_targets import ArchiveTarget, Crash, no_crash
from bridge.ops.replay import export_jsonl, read_jsonl
from statemachine.audit import Verified, verify
from statemachine.envelope import Envelope
from statemachine.errors import ConcurrencyConflict, IntegrityError, TransitionNotAllowed
from statemachine.lifecycle import TERMINAL_COURSE
from statemachine.ports import EventStore, Head

FORMAT = "coursegen-archive/1"
ENDED = sorted(TERMINAL_COURSE)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``0s`` -> seconds."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError(f"not a duration: {text!r} (say 30d, 12h, 90m or 45s)")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def encode(events: Sequence[Envelope], head: Head) -> bytes:
    """The archive of a history that ends at ``head``."""

    out = io.StringIO()
    export_jsonl(events, out)
    trailer = {
        "format": FORMAT,
        "course_id": head.course_id,
        "events": len(events),
        "final_hash": head.last_hash,
        "status": head.status,
        "head": dict(head.snapshot),
    }
    out.write(json.dumps({"trailer": trailer}, ensure_ascii=False, sort_keys=True) + "\n")
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True, slots=True)
class Archived:
    """A verified archive: its events and its trailer."""

    course_id: str
    events: list[Envelope]
    final_hash: str
    status: str
    head: Head
    verified: Verified


def verify_archive(data: bytes) -> Archived:
    """Check an archive offline: every line decodes from its stored bytes, the hash chain
    holds, the trailer's count and final hash are the history's, and the fold equals the
    head it carries. ``IntegrityError`` names the first bad version (0: the trailer)."""
    lines = data.decode("utf-8").splitlines()
    if not lines:
        raise IntegrityError("?", 0, "the archive is empty")
    try:
        trailer = json.loads(lines[-1])["trailer"]
        course_id = trailer["course_id"]
        if trailer["format"] != FORMAT:
            raise IntegrityError(course_id, 0, f"unknown archive format {trailer['format']!r}")
        snapshot = trailer["head"]
        head = Head(
            course_id,
            trailer["status"],
            trailer["events"],
            trailer["final_hash"],
            snapshot.get("updated_at"),
            snapshot.get("variant"),
            snapshot,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise IntegrityError(
            "?", 0, "the last line is not an archive trailer (cut short?)"
        ) from None
    events = read_jsonl(lines[:-1])
    if len(events) != trailer["events"]:
        problem = f"the trailer counts {trailer['events']} events, the archive holds {len(events)}"
        raise IntegrityError(course_id, min(len(events), trailer["events"]) + 1, problem)
    done = verify(course_id, events, head)
    return Archived(course_id, events, head.last_hash, head.status, head, done)


@dataclass
class ArchiveReport:
    archived: list[str] = field(default_factory=list)  # written now
    reused: list[str] = field(default_factory=list)  # a verified archive was there already
    purged: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # interrupted purges completed
    skipped: list[dict[str, str]] = field(default_factory=list)  # course and why

    def as_dict(self) -> dict[str, Any]:
        return {
            "archived": self.archived,
            "reused": self.reused,
            "purged": self.purged,
            "finished": self.finished,
            "skipped": self.skipped,
        }


def archive_ended(
    store: EventStore,
    target: ArchiveTarget,
    *,
    before: str,
    crash: Crash = no_crash,
) -> ArchiveReport:
    """Archive and purge every ended course (completed, failed, cancelled) whose last event
    is older than ``before`` (ISO time). ``crash`` is called at each named point: tests make
    it raise there, then run again and check nothing was lost or duplicated."""
    report = ArchiveReport()
    for tomb in store.tombstones(incomplete=True):
        store.purge(
            tomb.course_id, version=tomb.version, last_hash=tomb.last_hash, location=tomb.location
        )
        report.finished.append(tomb.course_id)
    for head in _candidates(store, before):
        archive_course(store, target, head, report, crash)
    return report


def _candidates(store: EventStore, before: str) -> Iterable[Head]:
    for status in ENDED:
        heads = [h for h in store.courses(status=status) if (h.updated_at or "") < before]
        yield from sorted(heads, key=lambda h: h.course_id)


def archive_course(
    store: EventStore,
    target: ArchiveTarget,
    head: Head,
    report: ArchiveReport,
    crash: Crash = no_crash,
) -> None:
    course_id = head.course_id
    existing = target.read(course_id)
    if existing is not None and _same_ending(existing, head):
        report.reused.append(course_id)
    else:
        events = store.load(course_id)
        try:
            verify(course_id, events, head, same=store.same_snapshot)
        except IntegrityError as err:
            report.skipped.append({"course_id": course_id, "why": f"does not verify: {err}"})
            return
        target.write(course_id, encode(events, head), crash)
        crash("written", course_id)
        back = target.read(course_id)
        if back is None or not _same_ending(back, head):
            raise IntegrityError(course_id, head.version, "the archive did not read back whole")
        report.archived.append(course_id)
    crash("verified", course_id)
    try:
        store.purge(
            course_id,
            version=head.version,
            last_hash=head.last_hash,
            location=target.location(course_id),
        )
    except (ConcurrencyConflict, TransitionNotAllowed) as err:
        # redriven since it was read: it stays; the next run replaces its archive
        report.skipped.append({"course_id": course_id, "why": f"changed meanwhile: {err}"})
        return
    report.purged.append(course_id)
    crash("purged", course_id)


def _same_ending(data: bytes, head: Head) -> bool:
    """Whether ``data`` is a verified archive of the history that ends at ``head``."""
    try:
        found = verify_archive(data)
    except IntegrityError:
        return False
    return (
        found.course_id == head.course_id
        and found.final_hash == head.last_hash
        and found.verified.events == head.version
    )
