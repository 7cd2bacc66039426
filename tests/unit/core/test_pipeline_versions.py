"""Pipeline versions: the stored definitions, their digests, pins on courses, CourseMigrated."""

from __future__ import annotations

import json
from typing import Any

import pytest

import schemas
from statemachine.decide import decide
from statemachine.errors import TransitionNotAllowed, UnknownPipeline
from statemachine.events import CourseCancelled, CourseMigrated, CourseRequested
from statemachine.pipeline import Pipelines, default_pipelines, digest_of, parse
from statemachine.reducer import fold
from statemachine.state import CourseState
from statemachine.store.memory import MemoryStore
from statemachine.upcast import UNPINNED_PIPELINE_VERSION
from tests.factories import new, requested

# The digest of every released definition. A released version is never edited: a change to
# the DAG is a new version (README, "Pipeline versions"). If this fails after an edit of
# schemas/pipeline.json, move the old definition to schemas/pipelines/<its version>.json,
# give pipeline.json the next version, and add its digest here.
RELEASED = {
    1: "940080276afadad33b1a222724ee89da1357b72208fbd264cd956a97e63bc57e",
    2: "fd814d1cc92d1adca6f3c34498592abeb8dc8bef4201e72eb1bbbbd27fb00684",
    3: "93c5c604bed5362e046bdeaa44bc48bd0abae9f6f64176e4f56290c31b72e5cb",
    4: "fb67338899c939ae06ea68a17ad3d99af26ae2a253c422b9a2bd898d4cf79782",
    5: "ad45a467074a5df44efc4c628f116c18bae5ce20d538cca28c0a25b135815a1c",
}


def test_every_version_is_stored_once_and_pipeline_json_is_the_newest() -> None:
    docs = schemas.pipeline_versions()
    assert list(docs) == list(range(1, len(docs) + 1))  # no gap: each earlier one kept
    assert schemas.pipeline()["version"] == max(docs) == default_pipelines().current
    assert "pipelines/1" not in schemas.schema_names()  # definitions, not schemas


def test_released_definitions_are_never_edited() -> None:
    stored = {v: p.digest for v, p in default_pipelines().versions.items()}
    assert stored == RELEASED


def test_the_digest_is_of_canonical_json_whatever_the_formatting() -> None:
    doc = schemas.pipeline()
    reformatted: dict[str, Any] = json.loads(json.dumps(doc, indent=7, sort_keys=True))
    reformatted["$schema"] = "../pipeline.schema.json"  # where pipelines/N.json point
    assert digest_of(reformatted) == digest_of(doc) == default_pipelines().latest.digest
    changed = json.loads(json.dumps(doc))
    changed["steps"]["finalize"]["resources"]["timeoutSeconds"] += 1
    assert digest_of(changed) != digest_of(doc)


def test_the_earlier_versions_are_the_dags_they_were() -> None:
    versions = default_pipelines().versions
    # 1: the first DAG, one transcribe over the whole audio
    assert "transcribe_chunk" not in versions[1].steps
    assert versions[1].steps["transcribe"].queue == "ai-analysis-queue"
    assert versions[1].steps["analyze_video"].after == ("prepare_video",)
    # 2: transcribe_chunk fans out, transcribe stitches; 3: the same DAG with task budgets
    assert versions[2].steps["transcribe"].after == ("prepare_video", "transcribe_chunk")
    assert versions[2].order == versions[3].order
    assert versions[2].steps["prepare_video"].budget is None
    assert versions[3].steps["prepare_video"].budget is not None


def test_an_unknown_version_or_a_digest_that_does_not_match_is_a_clear_error() -> None:
    pipelines = default_pipelines()
    with pytest.raises(UnknownPipeline, match=r"no pipeline version 9 is stored \(.*1, 2, 3"):
        pipelines.get(9)
    with pytest.raises(UnknownPipeline, match="edited") as caught:
        pipelines.get(2, "0" * 64)
    assert caught.value.expected == RELEASED[2]
    assert pipelines.get(2, RELEASED[2]) is pipelines.versions[2]


def course(version: int | None) -> MemoryStore:
    """A store holding course c1's request, pinned to ``version`` (None: as before pinning)."""
    event = requested()
    if version is not None:
        digest = default_pipelines().versions[version].digest
        pin = CourseRequested(
            video_uri="gs://b/l.mp4", title="T", pipeline_version=version, pipeline_digest=digest
        )
        event = new(pin)
    store = MemoryStore()
    store.append("c1", 0, [event])
    return store


def pinned(version: int | None) -> CourseState:
    return fold(course(version).load("c1"))


def push(store: MemoryStore, event: Any) -> CourseState:
    store.append("c1", fold(store.load("c1")).version, [new(event)])
    return fold(store.load("c1"))


def test_a_request_recorded_before_pinning_runs_on_the_unpinned_version() -> None:
    state = pinned(None)
    assert state.pipeline is None and "pipeline" not in state.to_snapshot()  # as before
    assert state.pipeline_version == UNPINNED_PIPELINE_VERSION == 3
    assert default_pipelines().of(state) is default_pipelines().versions[3]


def test_a_pinned_course_is_decided_on_its_own_version() -> None:
    old, current = pinned(1), pinned(3)
    assert old.to_snapshot()["pipeline"] == {"version": 1, "digest": RELEASED[1]}
    on_old = decide(old, default_pipelines().of(old))
    on_current = decide(current, default_pipelines().of(current))
    assert [c.task for c in on_old] == [c.task for c in on_current] == ["prepare_video"]
    # pinned to 1, the course knows no transcribe_chunk: its tasks are those of version 1
    assert "transcribe_chunk" not in default_pipelines().of(old).steps


def test_a_pin_to_a_version_not_stored_is_refused_by_of() -> None:
    state = pinned(2)
    only_three = Pipelines({3: default_pipelines().versions[3]}, 3)
    with pytest.raises(UnknownPipeline, match="no pipeline version 2"):
        only_three.of(state)


def test_course_migrated_moves_the_pin() -> None:
    store = course(1)
    moved = push(
        store, CourseMigrated(from_version=1, to_version=3, digest=RELEASED[3], reason="r")
    )
    assert moved.pipeline == {"version": 3, "digest": RELEASED[3]}
    assert moved.status == "requested"
    assert default_pipelines().of(moved) is default_pipelines().versions[3]


def test_course_migrated_is_refused_from_another_version_or_once_the_course_ended() -> None:
    store = course(1)
    wrong = CourseMigrated(from_version=2, to_version=3, digest=RELEASED[3], reason="r")
    with pytest.raises(TransitionNotAllowed, match="not on pipeline version 2"):
        push(store, wrong)
    push(store, CourseCancelled(reason="stop"))
    right = CourseMigrated(from_version=1, to_version=3, digest=RELEASED[3], reason="r")
    with pytest.raises(TransitionNotAllowed, match="only an active course"):
        push(store, right)
    # an unpinned course migrates from the version it runs on
    back = CourseMigrated(from_version=3, to_version=1, digest=RELEASED[1], reason="r")
    assert push(course(None), back).pipeline_version == 1


def test_merged_holds_every_versions_steps_and_queues_current_first() -> None:
    doc = json.loads(json.dumps(schemas.pipeline()))
    doc["version"] = 4
    doc["queues"]["publishing-queue"] = doc["queues"].pop("course-building-queue")
    for step in doc["steps"].values():
        if step["queue"] == "course-building-queue":
            step["queue"] = "publishing-queue"
    del doc["steps"]["analyze_frames"]
    doc["steps"]["generate_structure"]["after"] = ["transcribe", "analyze_video"]
    doc["steps"]["transcribe"]["after"].remove("analyze_frames")
    newer = parse(doc)
    pipelines = Pipelines({3: default_pipelines().versions[3], 4: newer}, 4)
    merged = pipelines.merged
    assert set(merged.queues) == set(newer.queues) | {"course-building-queue"}
    assert "analyze_frames" in merged.steps and merged.order[: len(newer.order)] == newer.order
    assert merged.steps["finalize"].queue == "publishing-queue"  # the current definition
    with pytest.raises(ValueError, match="not among"):
        Pipelines({4: newer}, 3)


def test_the_audit_names_a_course_pinned_to_a_definition_not_stored() -> None:
    from statemachine.audit import verify
    from statemachine.errors import IntegrityError

    store = course(2)
    push(store, CourseMigrated(from_version=2, to_version=3, digest=RELEASED[3], reason="r"))
    events = store.load("c1")
    assert verify("c1", events, pipelines=default_pipelines()).events == 2
    only_two = Pipelines({2: default_pipelines().versions[2]}, 2)
    with pytest.raises(IntegrityError, match="no pipeline version 3 is stored") as caught:
        verify("c1", events, pipelines=only_two)
    assert caught.value.version == 2  # the CourseMigrated that pinned it
    verify("c1", events[:1], pipelines=only_two)  # before the move, version 2 was enough


def test_a_request_names_both_the_version_and_the_digest_or_neither() -> None:
    half = CourseRequested(video_uri="gs://b/l.mp4", title="T", pipeline_version=3)
    with pytest.raises(schemas.SchemaError, match="pipeline_digest"):
        MemoryStore().append("c1", 0, [new(half)])
