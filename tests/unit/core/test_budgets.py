"""Every task bounded: each step's worst case (its budget at its largest input: a chunk, a
frame shard, the longest accepted video) fits well inside its timeout, which is also its
dispatch deadline and at most Cloud Tasks' 30 minutes."""

from __future__ import annotations

import copy

import schemas
from statemachine.pipeline import CLOUD_TASKS_MAX_DEADLINE_S, default_pipeline, parse


def test_every_step_has_a_budget_that_fits_in_its_timeout() -> None:
    pipe = default_pipeline()
    assert pipe.unbounded() == {}
    for name, step in pipe.steps.items():
        worst = pipe.worst_case_s(name)
        assert worst is not None and worst <= step.timeout_s * pipe.limits.safety, name
        assert step.timeout_s <= CLOUD_TASKS_MAX_DEADLINE_S


def test_a_chunk_is_bounded_by_the_chunk_size_not_the_lecture() -> None:
    pipe = default_pipeline()
    chunk = pipe.steps["transcribe_chunk"].chunk
    assert chunk is not None
    assert pipe.largest_input("transcribe_chunk") == chunk.max_s
    worst = pipe.worst_case_s("transcribe_chunk")
    assert worst is not None and worst <= 300  # no task over five minutes on one vCPU


def test_a_chunk_size_too_large_for_its_timeout_is_reported() -> None:
    doc = copy.deepcopy(dict(schemas.pipeline()))
    doc["steps"]["transcribe_chunk"]["chunk"]["maxSeconds"] = 4 * 3600
    pipe = parse(doc)
    assert "transcribe_chunk" in pipe.unbounded()
    assert "worst case" in pipe.unbounded()["transcribe_chunk"]


def test_frame_shards_stay_bounded_for_the_longest_video() -> None:
    pipe = default_pipeline()
    fan = pipe.steps["analyze_frames"].fan_out
    assert fan is not None
    frames = pipe.limits.max_video_s / 60 * 6  # extract_frames' cap for that length
    assert pipe.largest_input("analyze_frames") * fan.max_shards >= frames


def test_prepare_video_budgets_the_reencode_and_two_hours_stay_well_inside_its_deadline():
    """prepare_video's budget is its re-encode path (10-minute pieces side by side on the
    step's vCPUs): two hours take at most a quarter of its dispatch deadline."""
    pipe = default_pipeline()
    step = pipe.steps["prepare_video"]
    assert step.budget is not None and step.cpu >= 4
    two_hours = step.budget.fixed_s + step.budget.per_unit_s * 7200
    assert two_hours <= step.timeout_s / 4
    reencode_cpu_s_per_s = 0.16  # measured: 720p libx264 ultrafast from 1080p30 (README)
    assert step.budget.per_unit_s * step.cpu >= reencode_cpu_s_per_s
