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
from typing import TYPE_CHECKING, Any

from handlers import analytics
from statemachine.commands import Command, ScheduleTask
from statemachine.errors import ConcurrencyConflict
from statemachine.events import CourseAdmitted
from statemachine.lifecycle import TERMINAL_COURSE, CourseStatus
from statemachine.pipeline import Pipeline
from statemachine.ports import Clock, EventStore, Head
from statemachine.state import DEFAULT_TENANT, CourseState
from statemachine.tenancy import ai_step, hold_ai_steps
from statemachine.timefmt import iso

if TYPE_CHECKING:
    from bridge.core import Bridge

# Admitted, not ended: what a tenant's maxActive counts (failed frees its place).
_ADMITTED = (CourseStatus.REQUESTED, CourseStatus.RUNNING, CourseStatus.PAUSED)


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
        self._day = ""  # the start (ISO) of the budget day the costs below are of
        self._course_cost: dict[str, float] = {}  # course -> its AI cost today, as last seen
        self._tenant_cost: dict[str, float] = {}  # tenant -> the sum of its courses' above
        self._gated = limits.max_active_total is not None or any(
            lim.max_active is not None for lim in (limits.default, *limits.tenants.values())
        )
        # Read now, not on first use: the ledger is used inside appends (``Bridge.after``),
        # where reading the store could wait on the append's own lock.
        self.load()

    # -- the ledger ------------------------------------------------------------------
    def load(self) -> None:
        """(Re)build the ledger from the store's heads (never inside an append); the turn
        order is kept."""
        active: dict[str, set[str]] = {}
        waiting: dict[str, list[tuple[str, int, str]]] = {}
        now = self.clock.now()
        since = day_start(now)
        costs: dict[str, tuple[str, float]] = {}
        for head in self.store.courses():
            snap, tenant = head.snapshot, tenant_of(head.snapshot)
            if head.status in _ADMITTED:
                active.setdefault(tenant, set()).add(head.course_id)
            elif head.status == CourseStatus.QUEUED:
                q = snap.get("queued") or {}
                key = (str(q.get("at", "")), int(q.get("position", 0)), head.course_id)
                waiting.setdefault(tenant, []).append(key)
            if self.limits.of(tenant).daily_ai_usd is not None:
                costs[head.course_id] = (tenant, spend_of((head,), tenant, since))
        with self._lock:
            self._active = active
            self._waiting = {t: [c for *_, c in sorted(keys)] for t, keys in waiting.items()}
            for tenant in sorted(self._waiting):
                if tenant not in self._turns:
                    self._turns.append(tenant)
            self._day = since
            self._course_cost = {c: usd for c, (_, usd) in costs.items()}
            self._tenant_cost = {}
            for tenant, usd in costs.values():
                self._tenant_cost[tenant] = self._tenant_cost.get(tenant, 0.0) + usd
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
        tenant has spent its daily AI budget; the same object when nothing is held.

        Runs inside an append's transaction (``Bridge.after``), so it never reads the store:
        the spend is the ledger's, loaded once and kept up to date from every state seen."""
        budget = self.limits.of(state.tenant).daily_ai_usd
        if budget is None:
            return commands
        now = self.clock.now()
        spent = self.observe(state, now)
        if spent < budget or not any(
            isinstance(c, ScheduleTask) and ai_step(pipeline, c.step) for c in commands
        ):
            return commands
        until = iso(next_day(now))
        reason = (
            f"tenant {state.tenant} has spent ${spent:.4f} of its ${budget:.4f} daily AI"
            f" budget: AI steps wait for the budget day to roll over at {until}"
        )
        return hold_ai_steps(commands, pipeline, until=until, reason=reason)

    def observe(self, state: CourseState, now: float) -> float:
        """Count what ``state``'s tasks that finished today cost; its tenant's spend today."""
        since = day_start(now)
        cost = sum(t.cost_usd() for t in state.tasks.values() if (t.finished_at or "") >= since)
        with self._lock:
            self._roll(since)
            before = self._course_cost.get(state.course_id, 0.0)
            self._course_cost[state.course_id] = cost
            total = self._tenant_cost.get(state.tenant, 0.0) + cost - before
            self._tenant_cost[state.tenant] = total
            return round(total, 6)

    def spent_today(self, tenant: str) -> float:
        with self._lock:
            self._roll(day_start(self.clock.now()))
            return round(self._tenant_cost.get(tenant, 0.0), 6)

    def _roll(self, since: str) -> None:
        """A new budget day: nothing spent yet (caller locks)."""
        if since != self._day:
            self._day = since
            self._course_cost.clear()
            self._tenant_cost.clear()


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


def admit_waiting(bridge: Bridge) -> list[str]:
    """Admit every queued course that fits now, round-robin by tenant, then advance each (its
    first task); the courses admitted. Idempotent and crash-safe: each admission is
    ``CourseAdmitted`` appended at the course's version, so a course admitted meanwhile (by
    another process) or cancelled is skipped; one left queued by a crash is taken by the
    next pass (every reconcile makes one)."""
    admission = bridge.admission
    if admission is None:
        return []
    admitted: list[str] = []
    while True:
        taken = admission.next_admissions()
        if not taken:
            return admitted
        for course_id, tenant in taken:
            if _record_admission(bridge, course_id, tenant):
                admitted.append(course_id)
                bridge.advance(course_id)
            else:  # cancelled, or admitted elsewhere: its place goes to the next one
                admission.release(course_id, tenant)


_TRIES = 50


def _record_admission(bridge: Bridge, course_id: str, tenant: str) -> bool:
    """Append ``CourseAdmitted``; whether the course is admitted (by this or another call)."""
    for _ in range(_TRIES):
        head = bridge.store.head(course_id)
        if head is None or head.status != CourseStatus.QUEUED:
            return head is not None and head.status not in TERMINAL_COURSE
        reason = "a place freed; tenants waiting are served round-robin"
        event = bridge.new_event(
            CourseAdmitted(tenant=tenant, reason=reason),
            f"{course_id}@{head.version}",
            course_id,
            f"admit:{course_id}@{head.version}",
        )
        try:
            bridge.store.append(course_id, head.version, [event])
        except ConcurrencyConflict:
            continue
        analytics.emit("course_admitted", course_id=course_id, tenant=tenant)
        return True
    return False
