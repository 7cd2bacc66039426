"""terraform/ against the google provider's schema, offline (scripts/check_terraform_schema.py).

The schema comes from the pinned cdktf bindings wheel (fetched with pip into .cache/ on first
use). Without it these tests skip, which COURSEGEN_NO_SKIPS=1 (CI) turns into failures.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is needed to parse terraform/")

from scripts import check_terraform_schema as check  # noqa: E402
from scripts.provider_schema import WHEEL, SchemaUnavailable, load_schema  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "provider_schema" / "main.tf"


@cache
def _schema() -> dict[str, Any] | str:
    try:
        return load_schema()
    except SchemaUnavailable as err:
        return str(err)


@pytest.fixture
def schema() -> dict[str, Any]:
    found = _schema()
    if isinstance(found, str):
        pytest.skip(f"the provider schema wheel is unavailable: {found}")
    return found


def findings_of(tmp_path: Path, schema: dict[str, Any], tf: str) -> list[check.Finding]:
    path = tmp_path / "main.tf"
    path.write_text(tf)
    return check.check_paths([path], schema, root=tmp_path).findings


# --- the schema -----------------------------------------------------------------------------


def test_the_schema_is_the_pinned_provider_release(schema: dict[str, Any]) -> None:
    assert schema["provider"] == {"source": "hashicorp/google", "version": "6.50.0"}
    assert schema["source"]["sha256"] == WHEEL.sha256
    assert len(schema["resources"]) > 1000 and len(schema["data_sources"]) > 300
    assert all(name.startswith("google_") for name in schema["resources"])


def test_the_schema_says_what_the_provider_documents(schema: dict[str, Any]) -> None:
    queue = schema["resources"]["google_cloud_tasks_queue"]
    assert queue["arguments"]["name"] == {"required": True, "type": "string"}
    assert queue["arguments"]["project"] == {"required": False, "type": "string"}
    retry = queue["blocks"]["retry_config"]
    assert retry["max_one"] and not retry["required"]
    assert retry["block"]["arguments"]["max_attempts"]["type"] == "number"
    headers = queue["blocks"]["http_target"]["block"]["blocks"]["header_overrides"]
    assert not headers["max_one"] and headers["block"]["blocks"]["header"]["required"]
    bucket = schema["resources"]["google_storage_bucket"]["arguments"]
    assert bucket["labels"]["type"] == {"map": "string"}
    assert bucket["uniform_bucket_level_access"]["type"] == "bool"
    # The Terraform name comes from the docs, not from the camelCase property (detectMd5Hash).
    assert "detect_md5hash" in schema["resources"]["google_storage_bucket_object"]["arguments"]
    assert schema["resources"]["google_monitoring_alert_policy"]["blocks"]["conditions"]["required"]
    assert "google_project" in schema["data_sources"]
    assert schema["provider_config"]["arguments"]["region"]["type"] == "string"


# --- the real tree --------------------------------------------------------------------------


def test_every_google_provider_pin_is_the_checked_version() -> None:
    pins: dict[str, str] = {}
    for path in sorted(TERRAFORM.rglob("versions.tf")):
        for block in hcl2.load(path.open()).get("terraform", []):
            for required in block.get("required_providers", []):
                for local, spec in required.items():
                    if local.startswith("__"):
                        continue
                    assert check.unquote(spec["source"]) != "hashicorp/google-beta"
                    if check.unquote(spec["source"]) == "hashicorp/google":
                        pins[str(path.relative_to(TERRAFORM))] = check.unquote(spec["version"])
    assert {"envs/dev/versions.tf", "envs/prod/versions.tf"} <= set(pins)
    assert set(pins.values()) == {WHEEL.provider_version}, pins


def test_terraform_has_no_findings_and_every_google_block_is_checked(
    schema: dict[str, Any],
) -> None:
    report = check.check_paths([TERRAFORM], schema)
    assert [str(f) for f in report.findings] == []
    written = [
        match
        for path in check.tf_files([TERRAFORM])
        for match in re.findall(
            r'^(?:(resource|data) "(google_\w+)" "(\w+)"|provider "google")',
            path.read_text(),
            flags=re.MULTILINE,
        )
    ]
    expected = sorted(
        "provider.google" if not kind else f"{'data.' if kind == 'data' else ''}{rtype}.{name}"
        for kind, rtype, name in written
    )
    assert len(expected) > 30
    assert sorted(report.checked) == expected
    assert report.unchecked and not any(".google_" in a for a in report.unchecked)


# --- the fixture: one error of each kind ----------------------------------------------------


def line_of(path: Path, text: str) -> int:
    (line,) = [n for n, row in enumerate(path.read_text().splitlines(), 1) if text in row]
    return line


def test_the_fixture_has_exactly_one_finding_of_each_kind(schema: dict[str, Any]) -> None:
    report = check.check_paths([FIXTURE], schema)
    got = sorted((f.kind, f.address, f.where, f.line) for f in report.findings)
    assert got == sorted(
        [
            (
                check.WRONG_TYPE,
                "google_cloud_tasks_queue.wrong_type",
                "retry_config.max_attempts",
                line_of(FIXTURE, 'max_attempts  = "five"'),
            ),
            (
                check.UNKNOWN_ARGUMENT,
                "google_cloud_tasks_queue.unknown_argument",
                "http_target.header_overrides.header.name",
                line_of(FIXTURE, 'name  = "X-Fixture"'),
            ),
            (
                check.UNKNOWN_BLOCK,
                "google_storage_bucket.unknown_block",
                "versionning",
                line_of(FIXTURE, "versionning {"),
            ),
            (
                check.MISSING_REQUIRED,
                "google_pubsub_subscription.missing_required",
                "topic",
                line_of(FIXTURE, 'resource "google_pubsub_subscription"'),
            ),
            (
                check.UNKNOWN_TYPE,
                "google_cloud_task_queue.unknown_type",
                "",
                line_of(FIXTURE, 'resource "google_cloud_task_queue"'),
            ),
        ]
    )
    assert {f.file for f in report.findings} == {str(FIXTURE.relative_to(REPO))}
    messages = {f.kind: str(f) for f in report.findings}
    assert messages[check.WRONG_TYPE].endswith(
        '"max_attempts" needs a number, got the string literal "five"'
    )
    assert 'no argument "name" here' in messages[check.UNKNOWN_ARGUMENT]
    assert 'no block type "versionning" here' in messages[check.UNKNOWN_BLOCK]
    assert 'the argument "topic" is required' in messages[check.MISSING_REQUIRED]
    assert 'no resource type "google_cloud_task_queue"' in messages[check.UNKNOWN_TYPE]
    assert len(report.checked) == 7  # the provider, the data source and five resources


def test_the_command_fails_on_findings_and_on_a_missing_schema(
    schema: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check.main([str(FIXTURE)]) == 1
    out = capsys.readouterr().out
    assert "5 findings" in out and out.count("main.tf:") == 5
    assert check.main([str(TERRAFORM)]) == 0
    assert "0 findings" in capsys.readouterr().out
    assert check.main([str(TERRAFORM), "--cache-dir", str(tmp_path), "--no-download"]) == 2
    assert "no provider schema" in capsys.readouterr().err


# --- the rules, one by one ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "wanted", "converts"),
    [
        ("5", "string", True),
        ("true", "string", True),
        ('"5"', "number", True),
        ('"-1.5e3"', "number", True),
        ('"five"', "number", False),
        ("true", "number", False),
        ('"true"', "bool", True),
        ("1", "bool", False),
        ('"yes"', "bool", False),
        ('"a"', {"list": "string"}, False),
        ('["a", 1]', {"list": "string"}, True),
        ('["1", "b"]', {"list": "number"}, False),
        ("{ a = 1 }", {"map": "string"}, True),
        ('{ a = "x" }', {"map": "number"}, False),
        ('["a"]', {"map": "string"}, False),
        ("[1]", "string", False),
        ("var.count", "number", True),
        ('"${var.count}"', "number", True),
        ('"n-${var.count}"', "bool", True),
        ("null", "number", True),
        ("<<EOT\nfive\nEOT", "string", True),
    ],
)
def test_a_literal_fails_only_where_terraform_cannot_convert_it(
    literal: str, wanted: Any, converts: bool
) -> None:
    value = hcl2.loads(f"x = {literal}\n")["x"]
    assert (check.conversion_error(value, wanted) is None) is converts


def test_block_shape_mistakes(schema: dict[str, Any], tmp_path: Path) -> None:
    found = findings_of(
        tmp_path,
        schema,
        """
resource "google_cloud_tasks_queue" "q" {
  location    = "europe-west1"
  rate_limits = { max_concurrent_dispatches = 1 }
  name {
    value = "q"
  }
  retry_config {
    max_attempts = 1
  }
  retry_config {
    max_attempts = 2
  }
  dynamic "project" {
    for_each = []
    content {}
  }
}

resource "google_monitoring_alert_policy" "p" {
  display_name = "p"
  combiner     = "OR"
}

resource "google_pubsub_topic" "beta" {
  provider = google-beta
  name     = "t"
}
""",
    )
    assert sorted((f.kind, f.address, f.where) for f in found) == sorted(
        [
            (check.UNKNOWN_ARGUMENT, "google_cloud_tasks_queue.q", "rate_limits"),
            (check.UNKNOWN_BLOCK, "google_cloud_tasks_queue.q", "name"),
            (check.MISSING_REQUIRED, "google_cloud_tasks_queue.q", "name"),
            (check.TOO_MANY_BLOCKS, "google_cloud_tasks_queue.q", "retry_config"),
            (check.UNKNOWN_BLOCK, "google_cloud_tasks_queue.q", "project"),
            (check.MISSING_REQUIRED, "google_monitoring_alert_policy.p", "conditions"),
            (check.UNCHECKED_PROVIDER, "google_pubsub_topic.beta", "provider"),
        ]
    )
    hints = {(f.kind, f.where): f.message for f in found}
    assert "is a block: write rate_limits { ... }" in hints[(check.UNKNOWN_ARGUMENT, "rate_limits")]
    assert "is an argument: write name = ..." in hints[(check.UNKNOWN_BLOCK, "name")]
