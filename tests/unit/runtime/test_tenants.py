"""Tenants and fair shares: limits, the queued state, round-robin admission, budget holds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bridge.core import InvalidRequest
from bridge.ops import operations
from bridge.ops.views import course_status
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import SettingError
from bridge.tenancy import Admission, Limit, TenantLimits, next_day, spend_of
from bridge.tooling.fairness import percentile, simulate_mixed
from bridge.tooling.synthetic import noop_steps
from bridge.web.bridge_app import ingest_envelope
from handlers.registry import StepContext, StepFn, StepResult
from statemachine.envelope import GENESIS_HASH, canonical, decode, digest
from statemachine.pipeline import default_pipeline
from statemachine.reducer import fold
from statemachine.store.memory import MemoryStore
from statemachine.timefmt import iso

from .conftest import REQUEST, settings

PIPELINE = default_pipeline()
COST = 0.01  # what each AI step's metering says it cost


class Ran:
    """No-op steps that note the order courses start in (their prepare_video) and give each
    AI step a metering with a cost."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def steps(self) -> Mapping[str, StepFn]:
        def wrap(name: str, inner: StepFn) -> StepFn:
            def step(ctx: StepContext) -> StepResult:
                if name == "prepare_video":
                    self.started.append(ctx.course.course_id)
                result = inner(ctx)
                if PIPELINE.steps[name].provider is None:
                    return result
                return StepResult(summary=result.summary, metering={"cost_usd": COST})

            return step

        return {name: wrap(name, fn) for name, fn in noop_steps(PIPELINE).items()}


def runtime(tmp: Path, limits: Mapping[str, Any], ran: Ran, **kw: Any) -> Runtime:
    cfg = settings(COURSEGEN_TENANT_LIMITS=json.dumps(limits))
    clock = kw.pop("clock", None) or VirtualClock()
    store = kw.pop("store", None) or MemoryStore()
    return embedded(tmp, settings=cfg, steps=ran.steps(), clock=clock, store=store, **kw)


@pytest.fixture
def ran() -> Ran:
    return Ran()


def request(rt: Runtime, n: str, tenant: str | None = None) -> str:
    message = {**REQUEST, "title": f"course {n}"}
    if tenant is not None:
        message["tenant"] = tenant
    return rt.bridge.ingest(message, message_id=f"m-{n}")


def types(rt: Runtime, course_id: str) -> list[str]:
    return [e.type for e in rt.store.load(course_id)]


def status(rt: Runtime, course_id: str) -> str:
    head = rt.store.head(course_id)
    assert head is not None
    return head.status


# -- limits from settings ----------------------------------------------------------------
def test_limits_have_defaults_and_per_tenant_overrides_field_by_field() -> None:
    limits = TenantLimits.parse(
        '{"default": {"maxActive": 4, "dailyAiUsd": 5}, "tenants": {"acme": {"maxActive": 20}},'
        ' "maxActiveTotal": 40}'
    )
    assert limits.of("acme") == Limit(max_active=20, daily_ai_usd=5.0)
    assert limits.of("anyone") == Limit(max_active=4, daily_ai_usd=5.0)
    assert limits.max_active_total == 40 and limits.any()
    assert not TenantLimits.parse("{}").any()


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '{"defaults": {}}',
        '{"default": {"maxActive": 0}}',
        '{"default": {"maxActive": true}}',
        '{"default": {"dailyAiUsd": -1}}',
        '{"tenants": {"a": {"burst": 3}}}',
        '{"maxActiveTotal": 2.5}',
    ],
)
def test_a_bad_limits_setting_stops_the_process_naming_it(raw: str) -> None:
    with pytest.raises(SettingError, match="COURSEGEN_TENANT_LIMITS"):
        settings(COURSEGEN_TENANT_LIMITS=raw)


def test_with_no_limit_there_is_no_ledger_and_requests_record_what_they_did(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {}, ran)
    course = request(rt, "1")
    assert rt.bridge.admission is None
    first = rt.store.load(course)[0]
    assert "tenant" not in first.data  # byte for byte what a request recorded before tenants
    assert types(rt, course)[:2] == ["CourseRequested", "TaskScheduled"]
    rt.close()


# -- the tenant of a request ---------------------------------------------------------------
def test_the_tenant_is_validated_like_an_id_and_may_come_as_an_attribute(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {}, ran)
    with pytest.raises(InvalidRequest, match="tenant"):
        request(rt, "bad", tenant="no spaces/slashes")
    with pytest.raises(InvalidRequest, match="differ"):
        rt.bridge.ingest({**REQUEST, "tenant": "a"}, message_id="m-x", tenant="b")
    course = rt.bridge.ingest(dict(REQUEST), message_id="m-attr", tenant="acme")
    assert rt.store.load(course)[0].data["tenant"] == "acme"
    assert course_status(rt.store, course)["tenant"] == "acme"  # type: ignore[index]
    rt.close()


class FakeBridgeRuntime:
    """What ``ingest_envelope`` needs of a runtime: its bridge, and a dead-letter sink."""

    def __init__(self, rt: Runtime) -> None:
        self.bridge = rt.bridge
        self.parked: list[tuple[bytes, str, Mapping[str, str]]] = []

    def dead_letter(self, data: bytes, reason: str, attributes: Mapping[str, str]) -> None:
        self.parked.append((data, reason, dict(attributes)))


def push(message: Mapping[str, Any], attributes: Mapping[str, str]) -> dict[str, Any]:
    import base64

    data = base64.b64encode(json.dumps(message).encode()).decode()
    return {"message": {"data": data, "messageId": "p-1", "attributes": dict(attributes)}}


def test_a_bad_tenant_attribute_is_dead_lettered_with_its_reason_and_its_tenant(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {}, ran)
    fake = FakeBridgeRuntime(rt)
    status_code, body = ingest_envelope(fake, push(REQUEST, {"tenant": "x" * 200}))  # type: ignore[arg-type]
    assert status_code == 200 and body["status"] == "rejected" and "tenant" in body["reason"]
    ((data, reason, attributes),) = fake.parked
    assert json.loads(data) == REQUEST and attributes["tenant"] == "x" * 128
    assert reason == body["reason"]
    status_code, body = ingest_envelope(fake, push(REQUEST, {"tenant": "acme"}))  # type: ignore[arg-type]
    assert body["status"] == "accepted"
    assert rt.store.load(body["courseId"])[0].data["tenant"] == "acme"
    rt.close()


def test_an_old_request_without_a_tenant_reads_as_the_default_tenant() -> None:
    body = {
        "course_id": "old",
        "version": 1,
        "type": "CourseRequested",
        "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00.000000Z",
        "actor": "legacy",
        "causation_id": None,
        "correlation_id": None,
        "idempotency_key": None,
        "data": {"video_url": "gs://b/old.mp4", "title": "Old", "language": "en", "options": {}},
        "prev_hash": GENESIS_HASH,
    }
    raw = canonical(body)
    state = fold([decode(raw, digest(raw), json.loads)])
    assert state.tenant == "default" and "tenant" not in state.to_snapshot()


# -- admission ------------------------------------------------------------------------------
def test_a_course_over_its_tenants_limit_waits_queued_with_its_position(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {"tenants": {"acme": {"maxActive": 1}}}, ran)
    first, second, third = (request(rt, n, "acme") for n in "123")
    other = request(rt, "4", "globex")  # another tenant is not limited by acme's limit
    assert [status(rt, c) for c in (first, second, third, other)] == [
        "running",
        "queued",
        "queued",
        "running",
    ]
    queued = rt.store.load(third)[1]
    assert queued.type == "CourseQueued"
    assert queued.data["tenant"] == "acme" and queued.data["position"] == 2
    assert "1 active course" in queued.data["reason"]
    view = course_status(rt.store, third)
    assert view is not None and view["queued"]["position"] == 2
    rt.run_until_idle()  # the first ends: the second is admitted, then the third
    assert ran.started == [first, other, second, third]
    assert all(status(rt, c) == "completed" for c in (first, second, third, other))
    assert types(rt, third)[:4] == [
        "CourseRequested",
        "CourseQueued",
        "CourseAdmitted",
        "TaskScheduled",
    ]
    rt.close()


def test_a_redelivered_request_never_takes_a_second_place_or_a_second_admission(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {"tenants": {"acme": {"maxActive": 1}}}, ran)
    first = request(rt, "1", "acme")
    second = request(rt, "2", "acme")
    for _ in range(3):  # Pub/Sub delivers again
        assert request(rt, "2", "acme") == second
        assert request(rt, "1", "acme") == first
    assert rt.bridge.admission is not None
    assert rt.bridge.admission.waiting() == {"acme": [second]}
    assert rt.bridge.admission.active() == {"acme": 1}
    rt.run_until_idle()
    assert types(rt, second).count("CourseAdmitted") == 1
    assert types(rt, first).count("CourseAdmitted") == 0  # admitted on arrival: no event
    assert rt.bridge.admit_waiting() == []  # nothing left: a second pass admits nothing
    rt.close()


def test_freed_places_go_round_robin_across_waiting_tenants_not_first_come(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {"maxActiveTotal": 1}, ran)
    big = [request(rt, f"b{i}", "big") for i in range(4)]
    small = request(rt, "s", "small")
    tiny = request(rt, "t", "tiny")
    rt.run_until_idle()
    # first come would be b0 b1 b2 b3 s t: the small tenants wait behind the big one's line
    assert ran.started == [big[0], big[1], small, tiny, big[2], big[3]]
    assert all(status(rt, c) == "completed" for c in [*big, small, tiny])
    rt.close()


def test_the_ledger_serves_tenants_in_turn_and_respects_each_limit() -> None:
    store = MemoryStore()
    limits = TenantLimits(
        default=Limit(max_active=2), tenants={"b": Limit(max_active=1)}, max_active_total=3
    )
    ledger = Admission(limits, store, VirtualClock())
    assert ledger.enter("a1", "a") == (None, True)
    assert ledger.enter("a1", "a") == (None, False)  # asked again: same answer, not fresh
    assert ledger.enter("b1", "b") == (None, True)
    place, fresh = ledger.enter("b2", "b")
    assert place is not None and place[0] == 1 and "limit" in place[1] and fresh
    assert ledger.enter("a2", "a") == (None, True)  # 3 active: the total is reached
    place, _ = ledger.enter("c1", "c")
    assert place is not None and "all tenants" in place[1]
    ledger.enter("a3", "a")
    assert ledger.next_admissions() == []  # full
    assert ledger.release("a1", "a")
    assert not ledger.release("a1", "a")  # a second release frees nothing
    # b waits on its own limit (b1 still runs): the place goes to the next tenant in turn
    assert ledger.next_admissions() == [("c1", "c")]
    ledger.release("b1", "b")
    assert ledger.next_admissions() == [("b2", "b")]
    ledger.release("c1", "c")
    assert ledger.next_admissions() == [("a3", "a")]


def test_cancelling_a_queued_course_frees_nothing_and_cancelling_a_running_one_admits(
    tmp_path: Path, ran: Ran
) -> None:
    rt = runtime(tmp_path, {"tenants": {"acme": {"maxActive": 1}}}, ran)
    first, second, third = (request(rt, n, "acme") for n in "123")

    def cancel(course: str) -> None:
        operations.cancel(rt.store, rt.bridge, course, operator="ops", reason="test")

    cancel(second)
    assert status(rt, second) == "cancelled" and status(rt, third) == "queued"
    cancel(first)
    assert status(rt, third) == "running"
    assert types(rt, second) == ["CourseRequested", "CourseQueued", "CourseCancelled"]
    rt.close()


def test_a_queued_course_is_admitted_by_a_later_process_after_a_crash(
    tmp_path: Path, ran: Ran
) -> None:
    """The place freed in a process that could not admit (a crash right after; here a CLI
    without a bridge): the next bridge's reconcile pass reads the ledger from the store."""
    store = MemoryStore()
    limits = {"tenants": {"acme": {"maxActive": 1}}}
    clock = VirtualClock()
    first_rt = runtime(tmp_path / "a", limits, ran, store=store, clock=clock)
    first, second = request(first_rt, "1", "acme"), request(first_rt, "2", "acme")
    operations.cancel(store, None, first, operator="ops", reason="no bridge here")
    assert status(first_rt, second) == "queued"
    later = runtime(tmp_path / "b", limits, ran, store=store, clock=clock)
    counts = later.bridge.reconcile(0.0)
    assert counts["admitted"] == 1 and status(later, second) == "running"
    later.run_until_idle()
    assert status(later, second) == "completed"
    assert types(later, second).count("CourseAdmitted") == 1
    later.close()


# -- the daily AI budget ---------------------------------------------------------------------
def test_a_tenant_over_its_daily_budget_has_ai_steps_held_until_the_day_rolls_over(
    tmp_path: Path, ran: Ran
) -> None:
    clock = VirtualClock()
    rt = runtime(tmp_path, {"tenants": {"thrifty": {"dailyAiUsd": 0.05}}}, ran, clock=clock)
    thrifty = request(rt, "1", "thrifty")  # 11 AI tasks at 0.01: over 0.05 half way
    other = request(rt, "2", "other")  # no budget of its own: never held
    rt.dispatcher.run_until_idle(until=clock.now() + 3600)  # an hour: still the same day
    assert status(rt, other) == "completed"
    view = course_status(rt.store, thrifty)
    assert view is not None and view["status"] == "running"  # held, not failed
    tomorrow = iso(next_day(clock.now()))
    assert view["held"] and all(h["until"] == tomorrow for h in view["held"])
    reason = view["held"][0]["reason"]
    assert "thrifty" in reason and "daily AI budget" in reason and "$0.0500" in reason
    assert all(PIPELINE.steps[h["task"].split("#")[0]].provider for h in view["held"])
    assert rt.bridge.admission is not None
    assert rt.bridge.admission.spent_today("thrifty") >= 0.05
    rt.run_until_idle()  # the clock jumps to the next day: the held steps run
    assert status(rt, thrifty) == "completed"
    view = course_status(rt.store, thrifty)
    assert view is not None and view["held"] == []
    events = rt.store.load(thrifty)
    held = {e.data["task"]: e.data["not_before"] for e in events if e.data.get("held")}
    started = {e.data["task"]: e.occurred_at for e in events if e.type == "TaskStarted"}
    assert held and all(started[task] >= until for task, until in held.items())
    rt.close()


def test_spend_counts_only_the_tenants_tasks_that_finished_since_the_day_began() -> None:
    from statemachine.ports import Head

    def head(tenant: str, finished: str, cost: float, failed: float = 0.0) -> Head:
        task = {"finished_at": finished, "metering": {"cost_usd": cost}}
        if failed:
            task["failed_metering"] = {"cost_usd": failed}
        snap: dict[str, Any] = {"tasks": {"t": task}}
        if tenant != "default":
            snap["tenant"] = tenant
        return Head("c", "completed", 3, "h", finished, "cloudtasks", snap)

    heads = [
        head("a", "2026-01-02T01:00:00Z", 1.0, failed=0.5),
        head("a", "2026-01-01T23:59:59Z", 7.0),  # yesterday
        head("b", "2026-01-02T02:00:00Z", 9.0),
        head("default", "2026-01-02T02:00:00Z", 3.0),
    ]
    assert spend_of(heads, "a", "2026-01-02T00:00:00Z") == 1.5
    assert spend_of(heads, "default", "2026-01-02T00:00:00Z") == 3.0


# -- the mixed workload ------------------------------------------------------------------------
@pytest.mark.slow
def test_the_mixed_workload_keeps_small_tenants_near_an_empty_systems_start_times(
    tmp_path: Path,
) -> None:
    report = simulate_mixed(tmp_path, big=80, small_tenants=4, small_courses=5)
    small = report["small_tenants"]
    assert report["ok"] and small["p95_ratio"] <= 2.0
    assert set(report["time_to_start"]) == {"big", "small-00", "small-01", "small-02", "small-03"}
    assert report["time_to_start"]["big"]["courses"] == 80
    # first come, first served, the small tenants wait behind the big one's whole backlog
    assert report["first_come"]["small_p95_s"] > 2 * small["mixed_p95_s"]


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10.0 and percentile(values, 0.95) == 19.0
    assert percentile([3.0], 0.95) == 3.0 and percentile([], 0.5) == 0.0


# -- what people see ---------------------------------------------------------------------------
def test_status_and_the_dashboard_show_a_queued_place_and_held_steps(
    tmp_path: Path, ran: Ran, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bridge.cli import main
    from bridge.web.dashboard.data import course_detail

    limits = {"tenants": {"acme": {"maxActive": 1, "dailyAiUsd": 0.03}}}
    cfg = settings(COURSEGEN_TENANT_LIMITS=json.dumps(limits), COURSEGEN_STORE="sqlite")
    rt = embedded(tmp_path, settings=cfg, steps=ran.steps(), clock=VirtualClock())
    running, waiting = request(rt, "1", "acme"), request(rt, "2", "acme")
    rt.dispatcher.run_until_idle(until=rt.clock.now() + 600)
    detail = course_detail(rt.store, tmp_path, waiting)
    assert detail is not None and detail["status"] == "queued" and detail["tenant"] == "acme"
    assert detail["queued"]["position"] == 1 and "limit" in detail["queued"]["reason"]
    held = course_detail(rt.store, tmp_path, running)
    assert held is not None and held["held"] and "daily AI budget" in held["held"][0]["reason"]
    rt.close()
    monkeypatch.setenv("COURSEGEN_STORE", "sqlite")
    shown = CliRunner().invoke(main, ["status", waiting, "--data", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "queued: position 1 in tenant acme's line" in shown.output
    shown = CliRunner().invoke(main, ["status", running, "--data", str(tmp_path)])
    assert "held until" in shown.output and "daily AI budget" in shown.output


HISTORIES = Path(__file__).resolve().parents[2] / "histories"


def test_the_shadow_replay_names_a_lost_admission_and_a_decide_that_ignores_holds() -> None:
    from bridge.ops.replay import read_jsonl
    from bridge.ops.shadow import real_decide, shadow
    from statemachine.envelope import Envelope
    from statemachine.reducer import apply
    from statemachine.state import CourseState

    def history(name: str) -> tuple[list[Envelope], dict[str, Any]]:
        with (HISTORIES / f"{name}.jsonl").open(encoding="utf-8") as f:
            events = read_jsonl(f)
        return events, json.loads((HISTORIES / f"{name}.recorded.json").read_text())

    def admission_lost(state: CourseState, env: Envelope) -> CourseState:
        """A broken reducer change: CourseAdmitted leaves the course queued."""
        return state if env.type == "CourseAdmitted" else apply(state, env)

    events, rec = history("queued")
    found = shadow(rec["course_id"], events, apply=admission_lost)
    admitted = next(e.version for e in events if e.type == "CourseAdmitted")
    assert found is not None and found.version == admitted and found.kind == "commands"

    def hold_forever(state: CourseState) -> Any:
        """A broken change: the core's hold applied to every AI step (as if over budget)."""
        from statemachine.tenancy import hold_ai_steps

        until, reason = "2030-01-01T00:00:00.000000Z", "always"
        return hold_ai_steps(real_decide(state), PIPELINE, until=until, reason=reason)

    events, rec = history("completed")  # recorded with no budget: nothing was held
    found = shadow(rec["course_id"], events, decide=hold_forever)
    first_ai = next(e for e in events if e.type == "TaskScheduled" and "chunk" in e.data["task"])
    assert found is not None and found.kind == "commands" and found.version < first_ai.version
