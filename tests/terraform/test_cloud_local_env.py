"""cloud-local gives each function the environment Terraform gives it, and builds the Pub/Sub,
Cloud Tasks and Scheduler pieces as terraform/ declares them (read with python-hcl2).

Terraform's expressions are evaluated from envs/dev down through modules/coursegen to the
module that sets them, with project_id bound to the local project; what cannot be evaluated
offline (service-account emails, function URIs, secrets) is compared by name and must be one of
``cloud_topology.LOCAL_DIFFERENCES``, which says why the local value differs.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import SETTINGS
from bridge.tooling import cloud_topology as topo
from bridge.tooling.cloud_local import EMULATOR_VARS

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is needed to parse terraform/")

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
DEV = TERRAFORM / "envs" / "dev"
PROJECT = "coursegen-local"
PIPELINE = topo.pipeline_doc()


class Unresolved(Exception):
    """An expression that needs the cloud (an apply) to have a value."""


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def blocks(folder: Path, kind: str) -> dict[str, Any]:
    """Labelled blocks of ``kind`` (variable, output, module) across a module's files."""
    found: dict[str, Any] = {}
    for path in sorted(folder.glob("*.tf")):
        for block in parse(path).get(kind, []):
            found.update({unquote(k): v for k, v in block.items()})
    return found


def resource(folder: Path, rtype: str, name: str) -> dict[str, Any]:
    for path in sorted(folder.glob("*.tf")):
        for block in parse(path).get("resource", []):
            for found_type, by_name in block.items():
                for found_name, body in by_name.items():
                    if (unquote(found_type), unquote(found_name)) == (rtype, name):
                        return dict(body)
    raise AssertionError(f"{folder} has no {rtype}.{name}")


def locals_of(folder: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob("*.tf")):
        for block in parse(path).get("locals", []):
            merged.update(block)
    return merged


class Scope:
    """A module instance: its folder, the arguments its caller passes, that caller."""

    def __init__(self, folder: Path, args: dict[str, Any], parent: Scope | None) -> None:
        self.folder, self.args, self.parent = folder.resolve(), args, parent
        self.each: dict[str, str] = {}

    def var(self, name: str) -> Any:
        if self.parent is None and name == "project_id":
            return PROJECT  # the one input every environment is given
        if name in self.args:
            assert self.parent is not None
            return evaluate(self.args[name], self.parent)
        variable = blocks(self.folder, "variable").get(name)
        if variable is None or "default" not in variable:
            raise Unresolved(f"var.{name} of {self.folder.name}")
        return evaluate(variable["default"], self)

    def module(self, name: str) -> Scope:
        call = blocks(self.folder, "module")[name]
        return Scope(self.folder / unquote(call["source"]), call, self)

    def output(self, name: str) -> Any:
        return evaluate(blocks(self.folder, "output")[name]["value"], self)


def evaluate(value: Any, scope: Scope) -> Any:
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\$\{(.*)\}", value, re.DOTALL)
    if whole:
        return expression(whole.group(1).strip(), scope)
    text = unquote(value)  # a literal, or a template with ${...} parts
    return re.sub(r"\$\{([^{}]*)\}", lambda m: tf_string(expression(m.group(1), scope)), text)


def tf_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def expression(text: str, scope: Scope) -> Any:
    """The handful of expression shapes the environment maps use; anything else Unresolved."""
    if m := re.fullmatch(r"var\.(\w+)", text):
        return scope.var(m.group(1))
    if m := re.fullmatch(r"tostring\((.*)\)", text):
        return tf_string(expression(m.group(1), scope))
    if m := re.fullmatch(r'join\(",", (.*)\)', text):
        return ",".join(expression(m.group(1), scope))
    if m := re.fullmatch(r'(.*) \? "(\w*)" : "(\w*)"', text):
        return m.group(2) if expression(m.group(1), scope) else m.group(3)
    if m := re.fullmatch(r'module\.(\w+)\.(\w+)(?:\["([\w-]+)"\])?', text):
        out = scope.module(m.group(1)).output(m.group(2))
        return out[m.group(3)] if m.group(3) else out
    if m := re.fullmatch(r"(google_\w+)\.(\w+)\.name", text):
        return evaluate(resource(scope.folder, m.group(1), m.group(2))["name"], scope)
    if m := re.fullmatch(
        r"\{\s*for (\w+), (\w+) in (google_\w+)\.(\w+) : \1 => \2\.name\s*\}", text
    ):
        return names_by_key(scope, m.group(3), m.group(4))
    if text == "each.key":
        return scope.each["key"]
    raise Unresolved(text)


def names_by_key(scope: Scope, rtype: str, name: str) -> dict[str, Any]:
    """``{for key, r in rtype.name : key => r.name}`` of a resource ``for_each = local.X``."""
    body = resource(scope.folder, rtype, name)
    over = re.fullmatch(r"\$\{local\.(\w+)\}", body["for_each"])
    assert over, body["for_each"]
    out = {}
    for key in (k for k in locals_of(scope.folder)[over.group(1)] if not k.startswith("__")):
        scope.each = {"key": key}
        out[key] = evaluate(body["name"], scope)
    scope.each = {}
    return out


def services_scope() -> Scope:
    dev = Scope(DEV, {}, None)
    return dev.module("coursegen").module("services")


def terraform_env() -> dict[str, dict[str, Any]]:
    """Per function (bridge, each step): variable -> its value, or Unresolved."""
    services = services_scope()
    found = locals_of(services.folder)

    def values(mapping: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, expr in mapping.items():
            if name.startswith("__"):
                continue
            try:
                out[name] = evaluate(expr, services)
            except Unresolved as err:
                out[name] = err
        return out

    common, step_env = values(found["env_common"]), values(found["env_step"])
    bridge = common | values(found["env_bridge"]) | services.var("rollout_env")
    envs = {"bridge": bridge}
    for step, spec in PIPELINE["steps"].items():
        env = common | step_env | {"COURSEGEN_STEP": step}
        if not spec["after"]:
            env |= values(found["env_entry_step"])
        if "provider" in spec:
            env |= {k: Unresolved("Secret Manager") for k in found["secret_env"] if k[:2] != "__"}
        envs[step] = env
    return envs


def local_functions() -> dict[str, topo.Function]:
    place = topo.Place(
        project=PROJECT,
        region=topo.REGION,
        emulators={k: "127.0.0.1:1" for k in EMULATOR_VARS},
        urls={
            n: f"http://127.0.0.1:{9000 + i}" for i, n in enumerate(["bridge", *PIPELINE["steps"]])
        },
        task_secret="s",
        operator_token="t",
    )
    return {fn.name: fn for fn in topo.functions(place)}


def test_every_function_gets_terraforms_variable_names() -> None:
    local = local_functions()
    cloud = terraform_env()
    assert set(local) == set(cloud)
    for name, env in cloud.items():
        assert set(local[name].env) == set(env), name


def test_every_value_is_terraforms_or_a_documented_local_difference() -> None:
    local = local_functions()
    used: set[str] = set()
    for name, env in terraform_env().items():
        for var, value in env.items():
            mine = local[name].env[var]
            if isinstance(value, Unresolved) or mine != value:
                assert var in topo.LOCAL_DIFFERENCES, (
                    f"{name}: {var} is {mine!r} here, {value!r} in Terraform, and "
                    "LOCAL_DIFFERENCES does not say why"
                )
                used.add(var)
    assert used == set(topo.LOCAL_DIFFERENCES), "LOCAL_DIFFERENCES names no difference"


def test_the_local_additions_are_emulator_hosts_and_local_only_settings() -> None:
    local_only = {s.env for s in SETTINGS if not s.cloud}
    for fn in local_functions().values():
        assert not set(fn.local_env) & set(fn.env), fn.name
        assert set(fn.local_env) <= local_only | set(EMULATOR_VARS), fn.name


def test_each_function_runs_the_entry_point_terraform_builds() -> None:
    services = services_scope().folder
    bridge = resource(services, "google_cloudfunctions2_function", "bridge")
    step = resource(services, "google_cloudfunctions2_function", "step")
    points = {
        "bridge": unquote(bridge["build_config"][0]["entry_point"]),
        "step": unquote(step["build_config"][0]["entry_point"]),
    }
    for fn in local_functions().values():
        assert fn.target == points["bridge" if fn.name == "bridge" else "step"], fn.name
        assert fn.signature_type == "http"  # no event_trigger: Pub/Sub pushes to the bridge
    naming = str(locals_of(services)["step_function_names"])
    assert '${var.name_prefix}-${replace(name, "_", "-")}' in naming, naming
    assert topo.step_service("prepare_video") == f"{topo.NAME_PREFIX}-prepare-video"


def test_topics_and_subscriptions_are_modules_pubsub() -> None:
    pubsub = services_scope().parent.module("pubsub")  # type: ignore[union-attr]
    topics = pubsub.output("topics")
    dead = pubsub.output("dead_letter_topics")
    assert set(topo.topics()) == set(topics.values()) | set(dead.values())
    push = resource(pubsub.folder, "google_pubsub_subscription", "push")
    sources = {k: v for k, v in locals_of(pubsub.folder)["sources"].items() if k[:2] != "__"}
    mine = {s.topic: s for s in topo.subscriptions() if s.push_path}
    assert {k: unquote(v["path"]) for k, v in sources.items()} == {
        t: s.push_path for t, s in mine.items()
    }
    policy = push["dead_letter_policy"][0]
    retry = push["retry_policy"][0]
    for key, sub in mine.items():
        pubsub.each = {"key": key}
        assert sub.name == evaluate(push["name"], pubsub)
        assert sub.ack_deadline_s == evaluate(push["ack_deadline_seconds"], pubsub)
        assert sub.max_delivery_attempts == evaluate(policy["max_delivery_attempts"], pubsub)
        assert f"{sub.min_backoff_s}s" == evaluate(retry["minimum_backoff"], pubsub)
        assert f"{sub.max_backoff_s}s" == evaluate(retry["maximum_backoff"], pubsub)
        assert "google_pubsub_topic.dead_letter[each.key]" in policy["dead_letter_topic"]
        assert sub.dead_letter_topic == dead[key]
    hold = resource(pubsub.folder, "google_pubsub_subscription", "dead_letter")
    held = {s.topic: s for s in topo.subscriptions() if not s.push_path}
    for key in sources:
        pubsub.each = {"key": key}
        assert held[dead[key]].name == evaluate(hold["name"], pubsub)
        assert held[dead[key]].retain_acked is hold["retain_acked_messages"]
        assert held[dead[key]].ack_deadline_s == hold["ack_deadline_seconds"]


def test_queues_are_modules_queues_over_pipeline_json() -> None:
    body = resource(TERRAFORM / "modules" / "queues", "google_cloud_tasks_queue", "this")
    mine = topo.queues()
    assert set(mine) == set(PIPELINE["queues"])
    for name, spec in PIPELINE["queues"].items():
        for block in ("retry_config", "rate_limits"):
            declared = {k: v for k, v in body[block][0].items() if not k.startswith("__")}
            expected = {k: field_value(v, spec) for k, v in declared.items()}
            assert mine[name][block] == expected, (name, block)


def field_value(expr: str, spec: dict[str, Any]) -> Any:
    """``${each.value.a.b}`` or ``"${each.value.a.b}s"`` for one queue of pipeline.json."""
    m = re.fullmatch(r'"?\$\{each\.value\.(\w+)\.(\w+)\}(s?)"?', expr)
    assert m, expr
    value = spec[m.group(1)][m.group(2)]
    return f"{value}s" if m.group(3) else value


def test_the_reconcile_job_is_modules_scheduler() -> None:
    job = resource(TERRAFORM / "modules" / "scheduler", "google_cloud_scheduler_job", "reconcile")
    target = job["http_target"][0]
    assert unquote(target["uri"]).endswith(topo.RECONCILE_PATH)
    assert unquote(target["http_method"]) == "POST"
    assert 'jsonencode({source="cloud-scheduler"})' in re.sub(r"\s+", "", target["body"])
    assert topo.RECONCILE_BODY == {"source": "cloud-scheduler"}
    schedule = services_scope().parent.var("reconcile_schedule")  # type: ignore[union-attr]
    assert schedule == "*/5 * * * *" and topo.RECONCILE_EVERY_S == 5 * 60
    assert services_scope().var("reconcile_quiet_seconds") == topo.RECONCILE_QUIET_S
