"""The runtimes are wired at construction (issue 13): the Bridge and the TaskEndpoint are
frozen, the endpoint follows the bridge, and the one construction cycle is closed by a Late."""

from __future__ import annotations

import ast
from dataclasses import FrozenInstanceError, fields
from pathlib import Path
from typing import Any

import pytest

from bridge.dispatch.firestore_trigger import LegacyDisabled, LegacyTriggerDispatcher
from bridge.runtime.clock import VirtualClock
from bridge.runtime.cloud import NoDispatcher, cloud_runtime
from bridge.runtime.embedded import embedded
from bridge.runtime.late import Late
from bridge.settings import Settings
from statemachine.store.memory import MemoryStore

from .conftest import Env, Steps, runtime_with, settings

ROOT = Path(__file__).resolve().parents[3]


def assert_frozen(obj: Any) -> None:
    for f in fields(obj):
        with pytest.raises(FrozenInstanceError):
            setattr(obj, f.name, getattr(obj, f.name))


def test_the_embedded_endpoint_follows_its_bridge_and_neither_can_be_rewired(env: Env) -> None:
    assert env.rt.endpoint.follow is env.rt.bridge
    assert isinstance(env.rt.bridge.legacy_dispatcher, LegacyDisabled)
    assert env.rt.bridge.dispatch_follow_ups is True
    assert_frozen(env.rt.endpoint)
    assert_frozen(env.rt.bridge)


@runtime_with(dispatch_follow_ups=False, record_start_after_s=0)
def test_what_embedded_is_given_is_what_its_parts_are_built_with(env: Env) -> None:
    assert env.rt.bridge.dispatch_follow_ups is False
    assert env.rt.endpoint.record_start_after_s == 0


def test_the_legacy_transport_reaches_the_endpoint_built_after_it(tmp_path: Path) -> None:
    cfg = settings(COURSEGEN_LEGACY_TRIGGER_ENABLED="true", COURSEGEN_ROLLOUT_PERCENT="0")
    steps = Steps()
    rt = embedded(
        tmp_path, settings=cfg, steps=steps.registry(), clock=VirtualClock(), store=MemoryStore()
    )
    try:
        assert isinstance(rt.bridge.legacy_dispatcher, LegacyTriggerDispatcher)
        course = rt.bridge.ingest({"videoUri": "gs://l/a.mp4", "title": "A"}, message_id="m")
        rt.run_until_idle()
        head = rt.store.head(course)
        assert head is not None and (head.variant, head.status) == ("legacy", "completed")
        assert steps.calls["finalize"] == 1
    finally:
        rt.close()


class NoPublisher:
    def publish(self, topic: str, data: bytes, **attributes: str) -> None:
        pass

    @staticmethod
    def topic_path(project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"


def test_the_cloud_endpoint_follows_its_bridge_which_dispatches_only_with_a_queue(
    tmp_path: Path,
) -> None:
    cfg = Settings.from_env({"COURSEGEN_STORE": "memory", "COURSEGEN_AUTH": "none"})
    rt = cloud_runtime(cfg, publisher=NoPublisher(), tasks_client=object(), scratch=tmp_path)
    try:
        assert isinstance(rt.dispatcher, NoDispatcher)
        assert rt.endpoint.follow is rt.bridge
        assert rt.bridge.dispatch_follow_ups is False  # a step service: no queue to use
        assert_frozen(rt.endpoint)
        assert_frozen(rt.bridge)
    finally:
        rt.close()


def test_a_late_value_is_set_once_and_read_only_after() -> None:
    late: Late[int] = Late("the answer")
    with pytest.raises(RuntimeError, match="used before it is wired"):
        late.get()
    late.set(42)
    assert late.get() == 42
    with pytest.raises(RuntimeError, match="already wired"):
        late.set(43)


def test_no_module_assigns_to_a_built_endpoint_or_bridge() -> None:
    """Frozen refuses it at run time; this finds it in code no test runs."""
    found = []
    for path in [*ROOT.glob("bridge/**/*.py"), *ROOT.glob("handlers/**/*.py"), ROOT / "main.py"]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Attribute) and _names_a_part(target.value):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _names_a_part(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in ("endpoint", "bridge")
