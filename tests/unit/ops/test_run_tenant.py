"""``coursegen run --tenant``: the course counts against the tenant it names."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bridge.cli import main
from bridge.ops.run import run_course
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.pipeline import default_pipeline
from statemachine.store.sqlite import SqliteStore

ENV = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_SQLITE_SYNCHRONOUS": "NORMAL"}
SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "lecture.mp4"


def test_a_run_for_a_tenant_records_it_on_the_course(tmp_path: Path) -> None:
    video = tmp_path / "lecture.mp4"
    video.write_bytes(b"the steps are synthetic")
    limits = '{"tenants": {"math": {"maxActive": 1}}}'
    rt = embedded(
        tmp_path,
        settings=Settings.from_env({**ENV, "COURSEGEN_TENANT_LIMITS": limits}),
        steps=noop_steps(default_pipeline()),
    )
    summary = run_course(rt, video, title="Sets", out=tmp_path / "out", tenant="math")
    assert summary["status"] == "completed", summary
    store = SqliteStore(tmp_path / "events.db")
    try:
        (head,) = store.courses()
        assert head.snapshot["tenant"] == "math"
        (first, *_) = store.load(head.course_id)
        assert first.type == "CourseRequested" and first.data["tenant"] == "math"
    finally:
        store.close()


def test_a_bad_tenant_name_is_a_usage_error_and_records_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["run", str(SAMPLE), "--tenant", "no spaces!", "--data", str(tmp_path), "--json"],
        env=ENV,
    )
    assert result.exit_code == 2, result.output
    assert "tenant: 'no spaces!' does not match" in result.output
    store = SqliteStore(tmp_path / "events.db")
    try:
        assert store.courses() == []
    finally:
        store.close()
