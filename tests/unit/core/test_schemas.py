"""The schemas: one per event type, every schema used, pipeline.json a DAG that reaches finalize."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

import schemas
from statemachine.events import EVENT_TYPES
from statemachine.pipeline import FINAL_STEP, default_pipeline, parse

ROOT = Path(__file__).resolve().parents[3]
CODE = [p for d in ("statemachine", "bridge", "handlers") for p in (ROOT / d).rglob("*.py")]


def test_every_event_type_has_a_schema():
    names = set(schemas.schema_names())
    assert {f"events/{t}" for t in EVENT_TYPES} <= names


def test_every_event_schema_names_an_event_type():
    for name in schemas.schema_names():
        if name.startswith("events/"):
            assert name.removeprefix("events/") in EVENT_TYPES, name


def test_every_schema_file_is_used_by_the_code():
    source = "\n".join(p.read_text() for p in CODE)
    unused = []
    for name in schemas.schema_names():
        if name.startswith("events/"):
            continue  # validated by prepare_append as f"events/{type}" (checked above)
        if name == "pipeline.schema":
            continue  # schemas.pipeline() validates pipeline.json against it
        if not re.search(rf"[\"']{re.escape(name)}[\"']", source):
            unused.append(name)
    assert unused == []
    assert 'f"events/{new.type}"' in (ROOT / "statemachine/store/appending.py").read_text()


def test_every_schema_is_valid_2020_12():
    for name in schemas.schema_names():
        assert schemas.load(name)["$schema"].endswith("2020-12/schema"), name
        schemas.validator(name)  # check_schema raises on an invalid schema


def test_validation_errors_name_the_field():
    with pytest.raises(schemas.SchemaError) as err:
        schemas.validate("course_request", {"videoUri": "gs://b/v.mp4", "title": 7})
    assert any(e.startswith("title:") for e in err.value.errors)


def test_task_payload_is_the_plans_shape():
    required = schemas.load("task_payload")["required"]
    assert required == ["courseId", "taskType", "attempt", "data", "created", "idempotencyKey"]


def test_pipeline_has_the_plans_queues_and_the_nine_steps():
    pipe = default_pipeline()
    assert set(pipe.queues) == {
        "video-preparation-queue",
        "media-processing-queue",
        "ai-analysis-queue",
        "course-building-queue",
    }
    assert pipe.order[0] == "prepare_video" and pipe.order[-1] == FINAL_STEP
    assert len(pipe.steps) == 9
    assert pipe.steps["analyze_frames"].fan_out is not None
    chunks = pipe.steps["transcribe_chunk"]
    assert chunks.fan_out is not None and chunks.fan_out.source == "prepare_video"
    assert chunks.chunk is not None and chunks.chunk.max_s > 2 * chunks.chunk.overlap_s
    # the offline analysis reads the stitched transcript: no speech decoded twice
    assert {"transcribe", "extract_frames"} <= set(pipe.steps["analyze_video"].after)
    assert set(pipe.steps["generate_structure"].after) == {
        "transcribe",
        "analyze_video",
        "analyze_frames",
    }


def test_every_step_reaches_finalize():
    pipe = default_pipeline()
    for name in pipe.steps:
        if name != FINAL_STEP:
            assert FINAL_STEP in pipe.downstream(name), name


def test_a_cycle_is_refused():
    doc = copy.deepcopy(schemas.pipeline())
    doc["steps"]["prepare_video"]["after"] = ["finalize"]
    with pytest.raises(ValueError, match="cycle"):
        parse(doc)


def test_a_step_that_never_reaches_finalize_is_refused():
    doc = copy.deepcopy(schemas.pipeline())
    doc["steps"]["dangling"] = dict(doc["steps"]["transcribe"])
    with pytest.raises(ValueError, match="never reach finalize"):
        parse(doc)


def test_an_unknown_queue_is_refused():
    doc = copy.deepcopy(schemas.pipeline())
    doc["steps"]["transcribe"]["queue"] = "nowhere"
    with pytest.raises(ValueError, match="unknown queue"):
        parse(doc)


def test_pipeline_json_breaking_its_schema_is_reported():
    doc = copy.deepcopy(schemas.pipeline())
    del doc["queues"]["ai-analysis-queue"]["rateLimits"]
    with pytest.raises(schemas.SchemaError, match="rateLimits"):
        schemas.validate("pipeline.schema", doc)
