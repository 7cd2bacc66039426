"""LocalProvider against the HTTP stub speaking llama-cpp-python's flavour of the OpenAI API:
checked questions from the model, the offline generator for every question that fails."""

from __future__ import annotations

from pathlib import Path

import pytest

import schemas
from bridge.settings import Settings
from handlers.ai.local import LocalConfig, LocalProvider, loopback_url
from handlers.ai.offline import OfflineProvider
from handlers.ai.port import LessonText
from handlers.ai.select import provider_for
from tests.unit.ai.stub_server import CHAT, openai_answer, openai_error

STRUCTURE = {"title": "Rivers"}
LESSONS = [
    LessonText(
        index=0,
        title="How rivers move sediment",
        start=0.0,
        end=30.0,
        transcript="A river carries sediment downstream. The current lifts sand and gravel. "
        "Floods move the largest boulders.",
        slide_text="Sediment transport",
    ),
    LessonText(
        index=1,
        title="Erosion shapes valleys",
        start=30.0,
        end=60.0,
        transcript="Erosion deepens valleys over time. Meanders form where the current slows. "
        "Glaciers carve wide valleys in the mountains.",
        slide_text="Valleys and meanders",
    ),
]
OFFLINE = OfflineProvider().add_interactivity(STRUCTURE, LESSONS, per_lesson=2).data["lessons"]


def question(answer, prompt, choices=None):
    return {
        "kind": "multiple_choice",
        "prompt": prompt,
        "choices": choices
        or [answer, *[d for d in ("granite", "pollen", "lava") if d != answer][:2]],
        "answer": answer,
        "explanation": "The lesson says so.",
    }


def answer_for(index, *questions):
    return openai_answer({"lessons": [{"lesson": index, "questions": list(questions)}]})


GOOD = {
    0: [
        question("sediment", "What does a river carry downstream?"),
        question("boulders", "What do floods move?"),
    ],
    1: [
        question("valleys", "What does erosion deepen?"),
        question("Glaciers", "What carves wide valleys in the mountains?"),
    ],
}


@pytest.fixture
def local(stub):
    def make(**overrides) -> LocalProvider:
        fields = dict(base_url=stub.openai_base_url, model="qwen-test", timeout_s=5.0)
        fields.update(overrides)
        return LocalProvider(LocalConfig(**fields))

    return make


def quiz(result, index):
    return next(entry["questions"] for entry in result.data["lessons"] if entry["lesson"] == index)


def test_questions_that_pass_the_check_are_kept_and_the_request_asks_for_a_grammar(stub, local):
    stub.queue(CHAT, answer_for(0, *GOOD[0]), answer_for(1, *GOOD[1]))
    result = local(max_output_tokens=300).add_interactivity(STRUCTURE, LESSONS, per_lesson=2)

    schemas.validate("ai/interactivity", result.data)
    assert [q["answer"] for q in quiz(result, 0)] == ["sediment", "boulders"]
    assert [q["answer"] for q in quiz(result, 1)] == ["valleys", "Glaciers"]
    requests = [s.json for s in stub.seen(CHAT)]
    assert len(requests) == 2  # one lesson per request
    first = requests[0]
    assert first["model"] == "qwen-test" and first["max_tokens"] == 300
    fmt = first["response_format"]
    assert fmt["type"] == "json_object"  # llama-cpp-python has no json_schema type
    questions = fmt["schema"]["properties"]["lessons"]["items"]["properties"]["questions"]
    assert questions["minItems"] == 2  # a grammar can hold the model to it
    prompt_inputs = first["messages"][1]["content"]  # a string: llama.cpp's templates want one
    assert "How rivers move sediment" in prompt_inputs
    assert "Erosion shapes valleys" not in prompt_inputs
    assert result.metering["provider"] == "local"
    assert result.metering["calls"] == 2 and result.metering["input_tokens"] == 240
    assert result.metering["questions_passed"] == 4
    assert result.metering["questions_offline"] == 0 and result.metering["cost_usd"] == 0.0


def test_a_wrong_answer_key_is_replaced_by_an_offline_question_for_that_lesson_only(stub, local):
    wrong = question("lava", "What flows out of a volcano?")  # among its choices, never said
    stub.queue(CHAT, answer_for(0, GOOD[0][0], wrong), answer_for(1, *GOOD[1]))
    result = local().add_interactivity(STRUCTURE, LESSONS, per_lesson=2)

    first = quiz(result, 0)
    assert first[0]["answer"] == "sediment"
    offline_answers = [q["answer"] for q in OFFLINE[0]["questions"]]
    assert first[1]["answer"] in offline_answers and first[1]["answer"] != "sediment"
    assert [q["answer"] for q in quiz(result, 1)] == ["valleys", "Glaciers"]
    assert result.metering["questions_refused"] == 1
    assert result.metering["questions_offline"] == 1


def test_a_lesson_with_no_passing_question_gets_the_offline_questions(stub, local):
    unsupported = [question("lava", "Hot?"), question("pollen", "Spring?")]
    stub.queue(CHAT, answer_for(0, *unsupported), answer_for(1, *GOOD[1]))
    result = local().add_interactivity(STRUCTURE, LESSONS, per_lesson=2)

    assert quiz(result, 0) == OFFLINE[0]["questions"]
    assert result.metering["questions_passed"] == 2


def test_a_server_that_does_not_answer_makes_the_whole_quiz_offline_after_one_try(stub, local):
    stub.queue(CHAT, openai_error(503, "loading model"))
    result = local().add_interactivity(STRUCTURE, LESSONS, per_lesson=2)

    assert result.data["lessons"] == OFFLINE
    assert len(stub.seen(CHAT)) == 1  # the second lesson did not wait on it
    assert result.metering["lessons_failed"] == 1


def test_no_server_at_all_still_gives_the_offline_quiz():
    provider = LocalProvider(LocalConfig(base_url="http://127.0.0.1:9/v1", timeout_s=2.0))
    result = provider.add_interactivity(STRUCTURE, LESSONS, per_lesson=2)
    assert result.data["lessons"] == OFFLINE


def test_a_refused_request_falls_back_for_its_lesson_and_the_next_lesson_is_still_asked(
    stub, local
):
    stub.queue(CHAT, openai_error(400, "grammar too large"), answer_for(1, *GOOD[1]))
    result = local().add_interactivity(STRUCTURE, LESSONS, per_lesson=2)

    assert quiz(result, 0) == OFFLINE[0]["questions"]
    assert [q["answer"] for q in quiz(result, 1)] == ["valleys", "Glaciers"]
    assert len(stub.seen(CHAT)) == 2


def test_json_that_breaks_the_schema_twice_falls_back_for_that_lesson(stub, local):
    stub.queue(CHAT, openai_answer("not json"), openai_answer('{"lessons": 3}'))
    stub.queue(CHAT, answer_for(1, *GOOD[1]))
    result = local().add_interactivity(STRUCTURE, LESSONS, per_lesson=2)

    assert quiz(result, 0) == OFFLINE[0]["questions"]
    assert len(stub.seen(CHAT)) == 3  # the lesson's request and its one repair, then lesson 1
    assert result.metering["calls"] == 3


def test_the_other_steps_are_the_offline_providers(stub, local):
    transcript = {
        "language": "en",
        "duration_s": 40.0,
        "segments": [{"start": 1.0, "end": 5.0, "text": "Rivers carry sediment."}],
    }
    args = (Path("absent.mp4"), transcript)
    video = local().analyze_video(*args, scene_times=[0.0, 20.0])
    assert video == OfflineProvider().analyze_video(*args, scene_times=[0.0, 20.0])
    assert video.metering["provider"] == "offline"
    assert stub.seen(CHAT) == []  # only the quiz asks the model


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5:8080/v1", "http://example.com/v1", "ftp://127.0.0.1/v1", "http:///v1"],
)
def test_a_model_off_this_machine_is_refused(url):
    with pytest.raises(ValueError, match="COURSEGEN_LOCAL_MODEL_URL"):
        loopback_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/v1", "http://[::1]:8080/v1", "http://localhost/v1"]
)
def test_loopback_urls_are_accepted(url):
    assert loopback_url(url) == url


def test_coursegen_provider_local_selects_the_local_provider_with_its_settings():
    settings = Settings.from_env(
        {
            "COURSEGEN_PROVIDER": "local",
            "COURSEGEN_LOCAL_MODEL_URL": "http://127.0.0.1:8181/v1",
            "COURSEGEN_LOCAL_MODEL": "qwen-1.5b",
            "COURSEGEN_LOCAL_MODEL_MAX_TOKENS": "512",
        }
    )
    provider = provider_for("add_interactivity", settings, {})
    assert isinstance(provider, LocalProvider)
    assert provider.config == LocalConfig(
        base_url="http://127.0.0.1:8181/v1", model="qwen-1.5b", max_output_tokens=512
    )


def test_a_non_loopback_local_model_url_is_refused_when_the_provider_is_built():
    settings = Settings.from_env(
        {"COURSEGEN_PROVIDER": "local", "COURSEGEN_LOCAL_MODEL_URL": "http://192.0.2.1/v1"}
    )
    with pytest.raises(ValueError, match="loopback"):
        provider_for("add_interactivity", settings, {})
