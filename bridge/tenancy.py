"""Tenants and fair shares: per-tenant limits, the admission ledger, the daily AI budget.

``COURSEGEN_TENANT_LIMITS`` (JSON) sets them: ``{"default": {"maxActive": 4, "dailyAiUsd":
5}, "tenants": {"acme": {"maxActive": 20}}, "maxActiveTotal": 40}``; ``default`` applies to
every tenant, a tenant's own entry overrides it field by field, ``maxActiveTotal`` caps every
tenant together. Nothing set (the default): no ledger is built and the bridge's hot path does
not change.

The history is the truth: a course waits in ``queued`` (``CourseQueued``) until the bridge
appends ``CourseAdmitted`` at its expected version, so a redelivered request or a second
bridge can never admit it twice. The ``Admission`` ledger here is this process's view of
that truth (who is active, who waits, whose turn it is), loaded from the store's heads on
first use and again by every reconcile pass, so a crash between a course's end and the next
admission only delays that admission until the reconciler comes by. Across processes the
limits are checked against each one's view: two bridges admitting at the same instant may
each take the last place (documented in the README).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachine.commands import Command, ScheduleTask
from statemachine.lifecycle import CourseStatus
from statemachine.pipeline import Pipeline
from statemachine.ports import Clock, EventStore, Head
from statemachine.state import DEFAULT_TENANT, CourseState
from statemachine.tenancy import ai_step, hold_ai_steps
from statemachine.timefmt import iso

# Admitted, not ended: what a tenant's maxActive counts (failed frees its place).
_ADMITTED = (CourseStatus.REQUESTED, CourseStatus.RUNNING, CourseStatus.PAUSED)
SPEND_TTL_S = 30.0  # a tenant's spend today is re-read from the store at most this often


@dataclass(frozen=True, slots=True)
class Limit:
    """One tenant's limits (None: unlimited)."""

    max_active: int | None = None
    daily_ai_usd: float | None = None


@dataclass(frozen=True, slots=True)
class TenantLimits:
    default: Limit = Limit()
    tenants: Mapping[str, Limit] = field(default_factory=dict)
    max_active_total: int | None = None

    def of(self, tenant: str) -> Limit:
        return self.tenants.get(tenant, self.default)

    def any(self) -> bool:
        """Whether anything is limited (if not, the bridge needs no ledger)."""
        limits = (self.default, *self.tenants.values())
        return self.max_active_total is not None or any(
            lim.max_active is not None or lim.daily_ai_usd is not None for lim in limits
        )

    @classmethod
    def parse(cls, raw: str, env: str = "COURSEGEN_TENANT_LIMITS") -> TenantLimits:
        """The limits a ``COURSEGEN_TENANT_LIMITS`` value gives (ValueError naming it)."""
        try:
            doc = json.loads(raw or "{}")
        except ValueError as err:
            raise ValueError(f"{env} is not JSON: {err}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{env} must be a JSON object")
        unknown = set(doc) - {"default", "tenants", "maxActiveTotal"}
        if unknown:
            raise ValueError(f"{env}: unknown member(s) {sorted(unknown)}")
        default = _limit(doc.get("default", {}), Limit(), f"{env} default")
        tenants = doc.get("tenants", {})
        if not isinstance(tenants, dict):
            raise ValueError(f"{env} tenants must be an object of tenant to limits")
        return cls(
            default=default,
            tenants={t: _limit(v, default, f"{env} tenants.{t}") for t, v in tenants.items()},
            max_active_total=_count(doc.get("maxActiveTotal"), f"{env} maxActiveTotal"),
        )


def _limit(doc: Any, base: Limit, where: str) -> Limit:
    if not isinstance(doc, dict) or set(doc) - {"maxActive", "dailyAiUsd"}:
        raise ValueError(f"{where} must be an object with maxActive and/or dailyAiUsd")
    usd = doc.get("dailyAiUsd", base.daily_ai_usd)
    if usd is not None and (
        isinstance(usd, bool) or not isinstance(usd, int | float) or not 0 <= usd < float("inf")
    ):
        raise ValueError(f"{where} dailyAiUsd must be a number of dollars, 0 or more")
    active = _count(doc.get("maxActive", base.max_active), f"{where} maxActive")
    return Limit(max_active=active, daily_ai_usd=None if usd is None else float(usd))


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a whole number, 1 or more")
    return value


def tenant_of(snapshot: Mapping[str, Any]) -> str:
    tenant: str = snapshot.get("tenant", DEFAULT_TENANT)
    return tenant


def next_day(now: float) -> float:
    """The start (UTC midnight) of the budget day after the one ``now`` is in."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=1)).timestamp()


def day_start(now: float) -> str:
    return iso(next_day(now) - 86400.0)


def admission_for(raw_limits: str, store: EventStore, clock: Clock) -> Admission | None:
    """The ledger for ``COURSEGEN_TENANT_LIMITS``; None when it limits nothing."""
    limits = TenantLimits.parse(raw_limits)
    return Admission(limits, store, clock) if limits.any() else None


class Admission:
    """This process's ledger of who is active and who waits, per tenant, and the budget
    check of AI steps. Thread-safe; every method is cheap except ``load`` and a spend read."""

    def __init__(self, limits: TenantLimits, store: EventStore, clock: Clock) -> None:
        self.limits = limits
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        self._loaded = False
        self._active: dict[str, set[str]] = {}  # tenant -> admitted course ids not ended
        self._waiting: dict[str, list[str]] = {}  # tenant -> queued course ids, first first
        self._turns: list[str] = []  # tenants by turn: the last one served goes to the end
        self._spend: dict[str, tuple[str, float, float]] = {}  # tenant -> (day, read at, usd)
        self._gated = limits.max_active_total is not None or any(
            lim.max_active is not None for lim in (limits.default, *limits.tenants.values())
        )

    # -- the ledger ------------------------------------------------------------------
    def load(self) -> None:
        """(Re)build the ledger from the store's heads; the turn order is kept."""
        active: dict[str, set[str]] = {}
        for status in _ADMITTED:
            for head in self.store.courses(status=status):
                active.setdefault(tenant_of(head.snapshot), set()).add(head.course_id)
        waiting: dict[str, list[tuple[str, int, str]]] = {}
        for head in self.store.courses(status=CourseStatus.QUEUED):
            q = head.snapshot.get("queued") or {}
            key = (str(q.get("at", "")), int(q.get("position", 0)), head.course_id)
            waiting.setdefault(tenant_of(head.snapshot), []).append(key)
        with self._lock:
            self._active = active
            self._waiting = {t: [c for *_, c in sorted(keys)] for t, keys in waiting.items()}
            for tenant in sorted(self._waiting):
                if tenant not in self._turns:
                    self._turns.append(tenant)
            self._loaded = True

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()

    @property
    def gated(self) -> bool:
        """Whether new courses pass admission at all (some limit of active courses is set)."""
        return self._gated

    def enter(self, course_id: str, tenant: str) -> tuple[tuple[int, str] | None, bool]:
        """A new course: (None if admitted now, else its position in its tenant's line and
        why it waits; whether this call gave it that place). Asked again for the same course
        (the request's append may decide more than once, a request may be redelivered), the
        same answer, not fresh."""
        with self._lock:
            self._ensure_loaded()
            line = self._waiting.get(tenant, [])
            if course_id in line:
                return (line.index(course_id) + 1, self._why(tenant)), False
            if course_id in self._active.get(tenant, ()):
                return None, False
            if not line and self._room(tenant):
                self._active.setdefault(tenant, set()).add(course_id)
                return None, True
            self._waiting.setdefault(tenant, []).append(course_id)
            if tenant not in self._turns:
                self._turns.append(tenant)
            return (len(self._waiting[tenant]), self._why(tenant)), True

    def undo(self, course_id: str, tenant: str) -> None:
        """Forget ``enter`` of a course whose request was not recorded (a conflict)."""
        with self._lock:
            self._active.get(tenant, set()).discard(course_id)
            line = self._waiting.get(tenant, [])
            if course_id in line:
                line.remove(course_id)

    def release(self, course_id: str, tenant: str) -> bool:
        """A course ended (or was cancelled while it waited): whether its place was held."""
        with self._lock:
            if not self._loaded:
                return False
            held = course_id in self._active.get(tenant, ())
            self._active.get(tenant, set()).discard(course_id)
            line = self._waiting.get(tenant, [])
            if course_id in line:
                line.remove(course_id)
            return held

    def next_admissions(self) -> list[tuple[str, str]]:
        """Take every course that fits now, round-robin by tenant: (course id, tenant) in
        the order admitted, each moved to active (the caller records its CourseAdmitted)."""
        taken: list[tuple[str, str]] = []
        with self._lock:
            self._ensure_loaded()
            while True:
                tenant = next(
                    (t for t in self._turns if self._waiting.get(t) and self._room(t)), None
                )
                if tenant is None:
                    return taken
                course_id = self._waiting[tenant].pop(0)
                self._active.setdefault(tenant, set()).add(course_id)
                self._turns.remove(tenant)
                self._turns.append(tenant)
                taken.append((course_id, tenant))

    def waiting(self) -> dict[str, list[str]]:
        with self._lock:
            return {t: list(line) for t, line in self._waiting.items() if line}

    def active(self) -> dict[str, int]:
        with self._lock:
            return {t: len(ids) for t, ids in self._active.items() if ids}

    def _room(self, tenant: str) -> bool:
        cap = self.limits.of(tenant).max_active
        if cap is not None and len(self._active.get(tenant, ())) >= cap:
            return False
        total = self.limits.max_active_total
        return total is None or sum(map(len, self._active.values())) < total

    def _why(self, tenant: str) -> str:
        cap = self.limits.of(tenant).max_active
        if cap is not None and len(self._active.get(tenant, ())) >= cap:
            return f"tenant {tenant} has {cap} active course(s), its limit"
        return f"{self.limits.max_active_total} courses are active, the limit of all tenants"

    # -- the daily AI budget ---------------------------------------------------------
    def hold(
        self, state: CourseState, commands: Sequence[Command], pipeline: Pipeline
    ) -> Sequence[Command]:
        """``commands`` with its AI steps held until the next budget day, if the course's
        tenant has spent its daily AI budget; the same object when nothing is held."""
        budget = self.limits.of(state.tenant).daily_ai_usd
        if budget is None or not any(
            isinstance(c, ScheduleTask) and ai_step(pipeline, c.step) for c in commands
        ):
            return commands
        now = self.clock.now()
        spent = self.spent_today(state.tenant, now)
        if spent < budget:
            return commands
        until = iso(next_day(now))
        reason = (
            f"tenant {state.tenant} has spent ${spent:.4f} of its ${budget:.4f} daily AI"
            f" budget: AI steps wait for the budget day to roll over at {until}"
        )
        return hold_ai_steps(commands, pipeline, until=until, reason=reason)

    def spent_today(self, tenant: str, now: float) -> float:
        """What ``tenant``'s AI steps that finished today (UTC) cost, from their metering;
        read from the store's heads at most every ``SPEND_TTL_S`` seconds."""
        since = day_start(now)
        with self._lock:
            cached = self._spend.get(tenant)
            if cached is not None and cached[0] == since and now - cached[1] < SPEND_TTL_S:
                return cached[2]
        usd = spend_of(self.store.courses(), tenant, since)
        with self._lock:
            self._spend[tenant] = (since, now, usd)
        return usd


def spend_of(heads: Iterable[Head], tenant: str, since: str) -> float:
    """The AI cost (``cost_usd`` of the metering, every attempt) of ``tenant``'s tasks
    that finished at or after ``since`` (ISO time), over ``heads``."""
    total = 0.0
    for head in heads:
        snap = head.snapshot
        if tenant_of(snap) != tenant or (head.updated_at or "") < since:
            continue
        for task in snap.get("tasks", {}).values():
            if (task.get("finished_at") or "") < since:
                continue
            for metering in (task.get("metering") or {}, task.get("failed_metering") or {}):
                cost = metering.get("cost_usd", 0)
                if isinstance(cost, int | float) and not isinstance(cost, bool):
                    total += float(cost)
    return round(total, 6)
