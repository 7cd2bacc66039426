"""``coursegen bench pipeline`` reports each course's latency, request to completion."""

from __future__ import annotations

from bridge.tooling.bench import _quantile_ms, bench_pipeline


def test_quantiles_are_nearest_rank_in_milliseconds() -> None:
    ordered = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert _quantile_ms(ordered, 0.5) == 51.0
    assert _quantile_ms(ordered, 0.99) == 100.0
    assert _quantile_ms([0.25], 0.99) == 250.0
    assert _quantile_ms([], 0.5) is None


def test_pipeline_reports_course_latency_within_the_run() -> None:
    result = bench_pipeline(courses=3, workers=2)
    assert result["completed"] == 3
    p50, p99 = result["course_latency_p50_ms"], result["course_latency_p99_ms"]
    # every course ran its whole DAG: many fsynced appends after its request, none before it
    assert 0 < p50 <= p99 <= result["seconds"] * 1000 + 1
