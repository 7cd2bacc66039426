"""The stored event envelope, its canonical encoding and the sha256 hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

from statemachine.errors import IntegrityError
from statemachine.events import Event, schema_version, to_data, type_name
from statemachine.upcast import UPCASTERS, upcast

GENESIS_HASH = "0" * 64

Loads = Callable[[bytes], Any]


class Envelope(NamedTuple):
    """One stored event. A tuple: immutable, and cheap to build 300,000 times in a replay."""

    course_id: str
    version: int
    type: str
    schema_version: int
    occurred_at: str
    actor: str
    causation_id: str | None
    correlation_id: str | None
    idempotency_key: str | None
    data: Mapping[str, Any]
    prev_hash: str
    hash: str
    raw: bytes = b""  # the stored bytes the hash covers: canonical JSON without "hash"

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        del out["raw"]
        out["data"] = dict(self.data)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    """An event about to be appended: the store adds version and hashes."""

    event: Event
    occurred_at: str
    actor: str
    causation_id: str | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None

    @property
    def type(self) -> str:
        return type_name(self.event)


def canonical(document: Mapping[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def seal(
    course_id: str,
    version: int,
    prev_hash: str,
    new: NewEvent,
    data: Mapping[str, Any] | None = None,
) -> Envelope:
    """The envelope of ``new`` at ``version``, chained to ``prev_hash``; ``data`` is
    ``to_data(new.event)`` when the caller has it already."""
    body = {
        "course_id": course_id,
        "version": version,
        "type": new.type,
        "schema_version": schema_version(new.type),
        "occurred_at": new.occurred_at,
        "actor": new.actor,
        "causation_id": new.causation_id,
        "correlation_id": new.correlation_id,
        "idempotency_key": new.idempotency_key,
        "data": to_data(new.event) if data is None else data,
        "prev_hash": prev_hash,
    }
    raw = canonical(body)
    return _from_body(body, digest(raw), raw)


def decode(raw: bytes, stored_hash: str, loads: Loads = json.loads) -> Envelope:
    """The envelope stored as ``raw``, its data upcast to the current schema version."""
    body = loads(raw)
    etype = body["type"]
    version = body["schema_version"]
    data = body["data"]
    if (etype, version) in UPCASTERS:  # rare: skip the call on the replay hot path
        data = upcast(etype, version, data)
        version = schema_version(etype)
    return Envelope(
        body["course_id"],
        body["version"],
        etype,
        version,
        body["occurred_at"],
        body["actor"],
        body["causation_id"],
        body["correlation_id"],
        body["idempotency_key"],
        data,
        body["prev_hash"],
        stored_hash,
        raw,
    )


def _from_body(body: Mapping[str, Any], hash_: str, raw: bytes) -> Envelope:
    return Envelope(
        body["course_id"],
        body["version"],
        body["type"],
        body["schema_version"],
        body["occurred_at"],
        body["actor"],
        body["causation_id"],
        body["correlation_id"],
        body["idempotency_key"],
        body["data"],
        body["prev_hash"],
        hash_,
        raw,
    )


# A stored row of a history: (course_id, version, stored bytes, stored hash), as a store reads it.
StoredRow = tuple[str, int, bytes, str]


class StoredEvents(Sequence[Envelope]):
    """A course's history as its stored rows, decoded into envelopes on first use.

    A bulk reader (the audit's scan) hands these out: the audit verifies the rows themselves
    (hash, document, fold) without building an ``Envelope`` per event; any other reader sees an
    ordinary sequence of envelopes. A row that does not decode is an ``IntegrityError`` naming
    its course and version, raised where the history is first read as envelopes.
    """

    __slots__ = ("_decoded", "course_id", "loads", "rows")

    def __init__(self, course_id: str, rows: Sequence[StoredRow], loads: Loads = json.loads):
        self.course_id = course_id
        self.rows = rows
        self.loads = loads
        self._decoded: list[Envelope] | None = None

    def envelopes(self) -> list[Envelope]:
        if self._decoded is None:
            out = []
            for course_id, version, raw, stored_hash in self.rows:
                try:
                    out.append(decode(raw, stored_hash, self.loads))
                except (ValueError, KeyError, TypeError):
                    raise IntegrityError(
                        course_id, version, "stored bytes are not a valid envelope"
                    ) from None
            self._decoded = out
        return self._decoded

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Envelope]:
        return iter(self.envelopes())

    @overload
    def __getitem__(self, index: int) -> Envelope: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Envelope]: ...

    def __getitem__(self, index: int | slice) -> Envelope | Sequence[Envelope]:
        return self.envelopes()[index]
