"""The bridge's rooms: core (ingest, after, advance, dispatch), reconcile (recover, reconcile,
abandoned tasks), wire (payloads, ids, variants); wire depends on the core only."""

from __future__ import annotations

import ast
from pathlib import Path

import bridge.core
import bridge.reconcile
import bridge.wire

from .conftest import Env


def _imports(module: object) -> set[str]:
    tree = ast.parse(Path(str(getattr(module, "__file__", ""))).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_wire_depends_on_the_core_only():
    assert all(
        m.split(".")[0] in {"__future__", "hashlib", "collections", "typing", "statemachine"}
        for m in _imports(bridge.wire)
    ), _imports(bridge.wire)


def test_core_holds_no_recovery_and_no_wire_format():
    names = vars(bridge.core.Bridge)
    assert "_exhaust_abandoned" not in names
    for moved in ("task_payload", "course_id_for", "variant_for", "scheduled_view"):
        assert getattr(bridge.core, moved, None) is getattr(bridge.wire, moved)  # used, not defined
        assert f"def {moved}" not in Path(str(bridge.core.__file__)).read_text()


def test_reconcile_works_through_the_bridge_it_is_given(env: Env):
    course = env.ingest("m1")
    env.lost.add(course)
    assert bridge.reconcile.recover(env.rt.bridge) == {"courses": 1, "tasks": 0}
    assert bridge.reconcile.exhaust_abandoned(env.rt.bridge, course) == 0
    assert bridge.reconcile.reconcile(env.rt.bridge, 3600)["checked"] == 0
