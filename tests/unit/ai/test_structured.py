"""Schema conversion, the repair loop, metering, pricing, prompts and provider selection."""

from __future__ import annotations

import json

import pytest

import schemas
from bridge.settings import Settings
from handlers.ai import pricing, prompts
from handlers.ai.gemini import GeminiProvider
from handlers.ai.openai_provider import OpenAIProvider
from handlers.ai.port import PermanentProviderError
from handlers.ai.select import MissingCredentials, provider_for
from handlers.ai.structured import (
    Meter,
    Reply,
    gemini_schema,
    openai_strict_schema,
    prune_nulls,
    retry_after,
    structured_answer,
)
from tests.unit.ai.stub_server import canned_document

AI_SCHEMAS = ["transcript", "video_analysis", "frame_analysis", "course_structure", "interactivity"]


def objects(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from objects(value)


@pytest.mark.parametrize("name", AI_SCHEMAS)
def test_openai_strict_schema_closes_every_object_and_drops_unsupported_keywords(name):
    strict = openai_strict_schema(schemas.load(f"ai/{name}"))
    text = json.dumps(strict)
    for keyword in ("$schema", "$id", "minItems", "minimum", "maximum", "minLength"):
        assert f'"{keyword}"' not in text
    assert "title" not in strict  # the schema's own title; "title" properties stay
    found = list(objects(strict))
    assert found
    for obj in found:
        assert obj["additionalProperties"] is False
        assert obj["required"] == list(obj["properties"])


def test_openai_strict_schema_makes_optional_properties_nullable_and_types_enums():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"enum": ["x", "y"]}},
        "required": ["a"],
    }
    strict = openai_strict_schema(schema)
    assert strict["required"] == ["a", "b"]
    assert strict["properties"]["b"] == {
        "anyOf": [{"enum": ["x", "y"], "type": "string"}, {"type": "null"}]
    }
    assert prune_nulls({"a": "1", "b": None, "c": [{"d": None}]}) == {"a": "1", "c": [{}]}


@pytest.mark.parametrize("name", AI_SCHEMAS)
def test_gemini_schema_keeps_the_supported_subset(name):
    source = schemas.load(f"ai/{name}")
    converted = gemini_schema(source)
    assert "$schema" not in converted and "$id" not in converted
    assert "minLength" not in json.dumps(converted)
    assert converted["required"] == source["required"]
    if name == "course_structure":
        assert converted["properties"]["modules"]["minItems"] == 1


@pytest.mark.parametrize("name", AI_SCHEMAS)
def test_the_stubs_canned_documents_are_valid(name):
    inputs = {
        "duration_s": 30.0,
        "frames": [{"name": "f", "t": 1.0}],
        "lessons": [{"index": 0, "title": "L"}],
        "slides": [{"name": "f", "t": 1.0}],
    }
    schemas.validate(f"ai/{name}", canned_document(name, inputs))


VALID = canned_document("course_structure", {"duration_s": 30.0})


def scripted(*texts):
    """An ``ask`` that answers ``texts`` in turn and records the repair requests it got."""
    asked = []
    answers = iter(texts)

    def ask(repair):
        asked.append(repair)
        return Reply(next(answers), input_tokens=100, output_tokens=10)

    return ask, asked


def meter():
    return Meter("gemini", "gemini-2.5-flash", "structure@1")


def test_a_valid_first_answer_is_one_call():
    ask, asked = scripted(json.dumps(VALID))
    m = meter()
    assert structured_answer("ai/course_structure", ask, m) == VALID
    assert asked == [None]
    assert m.as_dict()["calls"] == 1


def test_an_invalid_answer_gets_one_repair_naming_the_problems():
    ask, asked = scripted("{not json", json.dumps(VALID))
    m = meter()
    assert structured_answer("ai/course_structure", ask, m) == VALID
    repair = asked[1]
    assert "not valid JSON" in repair.instruction and repair.previous == "{not json"
    assert m.as_dict() | {"cost_usd": 0} == {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "prompt_version": "structure@1",
        "input_tokens": 200,
        "output_tokens": 20,
        "cost_usd": 0,
        "calls": 2,
    }


def test_two_invalid_answers_are_permanent_with_the_errors():
    ask, asked = scripted(json.dumps({"title": "x"}), json.dumps({"title": "x", "summary": 3}))
    with pytest.raises(PermanentProviderError) as caught:
        structured_answer("ai/course_structure", ask, meter())
    message = str(caught.value)
    assert "ai/course_structure" in message and "twice" in message
    assert "'modules' is a required property" in message
    assert "summary: 3 is not of type 'string'" in message
    assert len(asked) == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_milliseconds_and_dates(headers, expected):
    now = 1445412480.0  # 2015-10-21 07:28:00 GMT
    assert retry_after(headers, now=now) == expected


def test_prices_come_from_one_table_with_prefix_fallback_and_overrides():
    assert pricing.estimate_cost("gpt-4o", input_tokens=1_000_000, output_tokens=1_000_000) == 12.5
    assert pricing.estimate_cost("gpt-4o-2024-08-06", input_tokens=1_000_000) == 2.5
    assert pricing.estimate_cost("gpt-4o-mini-2024-07-18", input_tokens=1_000_000) == 0.15
    assert pricing.estimate_cost("whisper-1", audio_seconds=600) == 0.06
    assert pricing.estimate_cost("models/gemini-2.5-flash", output_tokens=1_000_000) == 2.5
    assert pricing.estimate_cost("someone-elses-model", input_tokens=10**9) == 0.0
    overrides = pricing.parse_overrides('{"my-model": {"input_per_1m": 1.0}}')
    assert pricing.estimate_cost("my-model", input_tokens=2_000_000, overrides=overrides) == 2.0
    with pytest.raises(ValueError, match="may only set"):
        pricing.parse_overrides('{"m": {"per_token": 1}}')


def test_prompts_are_versioned_and_render_their_inputs():
    refs = [p.ref for p in prompts.PROMPTS.values()]
    assert len(set(refs)) == len(refs) and all("@" in r for r in refs)
    text = prompts.STRUCTURE.render(inputs=prompts.json_block({"duration_s": 3.0}))
    assert '"duration_s": 3.0' in text and "$" not in text
    assert prompts.prompt("repair").ref == "repair@1"


def settings(**values):
    return Settings.from_env({}, **values)


def test_provider_for_builds_each_provider_from_settings():
    s = settings(
        GEMINI_API_KEY="g-key",
        OPENAI_API_KEY="o-key",
        COURSEGEN_GEMINI_MODEL="gemini-2.5-pro",
        COURSEGEN_OPENAI_BASE_URL="http://127.0.0.1:1/v1",
    )
    gemini = provider_for("generate_structure", s, {"provider": "gemini"})
    assert isinstance(gemini, GeminiProvider) and gemini.model == "gemini-2.5-pro"
    openai = provider_for("transcribe", s, {"provider": "openai"})
    assert isinstance(openai, OpenAIProvider) and openai.model == "gpt-4.1-mini"
    assert openai.config.base_url == "http://127.0.0.1:1/v1"
    assert openai.config.transcribe_model == "whisper-1"
    chosen = provider_for(
        "analyze_video", settings(COURSEGEN_PROVIDER="gemini", GEMINI_API_KEY="g"), {}
    )
    assert chosen.name == "gemini"
    assert provider_for("transcribe", s, {"provider": "offline"}).name == "offline"


@pytest.mark.parametrize(
    ("name", "env"), [("gemini", "GEMINI_API_KEY"), ("openai", "OPENAI_API_KEY")]
)
def test_a_missing_key_is_a_clear_permanent_error_naming_the_variable(name, env):
    with pytest.raises(MissingCredentials) as caught:
        provider_for("generate_structure", settings(), {"provider": name})
    assert isinstance(caught.value, PermanentProviderError) and not caught.value.retryable
    assert env in str(caught.value)
