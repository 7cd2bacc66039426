"""The Rust validator's fast path never accepts a document that ``jsonschema`` refuses."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from bridge.tooling.bench import course_commands
from statemachine.events import to_data

SAMPLES = [(f"events/{n.type}", to_data(n.event)) for b in course_commands("c1") for n in b]
NAMES = schemas.schema_names()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
    | st.sampled_from(["prepare_video", "analyze_frames#2", "abc\n", "x" * 300, "", "#1"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def python_verdict(name, doc):
    return not list(schemas.validator(name).iter_errors(doc))


def agree(name, doc):
    """schemas.validate passes exactly when jsonschema alone finds no error."""
    try:
        schemas.validate(name, doc)
        passed = True
    except schemas.SchemaError:
        passed = False
    assert passed == python_verdict(name, doc), (name, doc)


def test_every_schema_has_a_fast_validator():
    assert all(schemas._fast(n) is not None for n in NAMES)


@pytest.mark.parametrize(("name", "doc"), SAMPLES[:12])
def test_real_events_pass(name, doc):
    schemas.validate(name, doc)


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_events_get_jsonschemas_verdict(sample, data):
    name, doc = sample
    doc = dict(doc)
    key = data.draw(st.sampled_from([*doc, "extra"]))
    if data.draw(st.booleans()):
        doc.pop(key, None)
    else:
        doc[key] = data.draw(json_values)
    agree(name, doc)


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), json_values)
def test_random_documents_get_jsonschemas_verdict(name, doc):
    agree(name, doc)


@pytest.mark.parametrize(
    "value", ["analyze_frames\n", ("a",), ["a"], 2**70, float("nan"), float("inf"), True, 1.0]
)
def test_edge_values_get_jsonschemas_verdict(value):
    for name, doc in SAMPLES[:12]:
        for key in doc:
            agree(name, {**doc, key: value})
