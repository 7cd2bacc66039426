"""Load: the task endpoint under gunicorn, driven from a second process; numbers printed."""

from __future__ import annotations

import json

import pytest

from tests.reliability.load import run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_task_endpoint_under_gunicorn_answers_everything_and_loses_nothing() -> None:
    report = run(courses=3000, duration=10)
    print("\n" + json.dumps(report, indent=2))

    load = report["load"]
    assert load["requests"] > 1000
    assert not any(load["errors"].values()), load["errors"]  # no socket errors, no timeouts
    assert load["answers"].get("5xx", 0) == 0 and load["answers"].get("4xx", 0) == 0
    histories = report["histories"]
    assert histories["verified"] == histories["courses"] == 3000
    assert histories["results_recorded_twice"] == 0
    # auth + validation + idempotency + two appends + a no-op step, over HTTP, one at a time
    assert report["overhead"]["client_p50_ms"] <= 5.0, report["overhead"]
