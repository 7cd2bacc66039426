"""analyze_video of a long lecture in windows (handlers/ai/windows.py), with the real
google-genai and openai clients against the local stub: how many requests, each window's
request carrying the previous window's summary, and the merged analysis."""

from __future__ import annotations

import itertools
import json

import pytest

import schemas
from handlers.ai import windows
from handlers.ai.gemini import VIDEO_WINDOW_S
from tests.unit.ai.stub_server import (
    CHAT,
    GENERATE,
    UPLOAD_START,
    camel_keys,
    gemini_answer,
    prompt_inputs,
)

MINUTES = 70  # three Gemini windows of at most 30 minutes


def long_transcript(minutes: float = MINUTES, every_s: float = 30.0) -> dict:
    count = int(minutes * 60 / every_s)
    return {
        "language": "en",
        "duration_s": minutes * 60.0,
        "segments": [
            {
                "start": i * every_s,
                "end": i * every_s + every_s - 1,
                "text": f"Sentence number {i} of the lecture about rivers.",
            }
            for i in range(count)
        ],
    }


SCENES = [0.0, 600.0, 1390.0, 2100.0, 2810.0, 3600.0]  # 1390 and 2810 sit near the thirds


def analysis(number: int, start: float, end: float, *, title: str | None = None) -> dict:
    return {
        "summary": f"Summary after part {number}.",
        "key_terms": ["rivers", f"term {number}"],
        "topics": [
            {
                "start": start,
                "end": end,
                "title": title or f"Topic {number}",
                "summary": f"What part {number} says.",
                "key_terms": [f"term {number}"],
            }
        ],
    }


def request_text(request: dict) -> str:
    """The text parts of a Gemini request's user turn."""
    return "\n".join(p.get("text", "") for p in request["contents"][0]["parts"])


# --- planning and merging --------------------------------------------------------------------


def test_a_short_lecture_is_one_window():
    assert windows.parts_needed(1200.0, max_s=VIDEO_WINDOW_S) == 1
    assert windows.plan(1200.0, 1, SCENES) == [windows.Window(0, 1, 0.0, 1200.0)]


def test_cuts_move_onto_nearby_scene_changes_and_cover_the_lecture():
    plan = windows.plan(4200.0, 3, SCENES)
    assert [(w.start_s, w.end_s) for w in plan] == [
        (0.0, 1390.0),
        (1390.0, 2810.0),
        (2810.0, 4200.0),
    ]


def test_windows_are_sized_by_tokens_too():
    assert windows.parts_needed(600.0, tokens=90_000, max_tokens=30_000) == 3


def test_a_window_answered_on_its_own_clock_is_moved_onto_the_lecture():
    window = windows.Window(1, 2, 1000.0, 2000.0)
    topics = [{"start": 0.0, "end": 400.0, "title": "T", "summary": "", "key_terms": []}]
    assert [(t["start"], t["end"]) for t in windows.clamped(window, topics)] == [(1000.0, 1400.0)]


def test_a_topic_running_across_a_cut_becomes_one():
    first, second = windows.Window(0, 2, 0.0, 100.0), windows.Window(1, 2, 100.0, 200.0)
    merged = windows.merge(
        [
            (first, analysis(1, 0.0, 100.0, title="Deltas")),
            (second, analysis(2, 100.0, 200.0, title=" deltas ")),
        ]
    )
    assert [(t["title"], t["start"], t["end"]) for t in merged["topics"]] == [
        ("Deltas", 0.0, 200.0)
    ]
    assert merged["topics"][0]["key_terms"] == ["term 1", "term 2"]


# --- Gemini: one upload, one clipped request per window --------------------------------------


def test_gemini_analyses_a_long_lecture_window_by_window(stub, make_gemini, video):
    stub.processing_polls = 0
    stub.queue(
        GENERATE,
        gemini_answer(analysis(1, 0.0, 1390.0)),
        gemini_answer(analysis(2, 1390.0, 2810.0)),
        gemini_answer(analysis(3, 2810.0, 4200.0)),
    )
    progress: list[tuple[float, float]] = []
    result = make_gemini().analyze_video(
        video,
        long_transcript(),
        scene_times=SCENES,
        checkpoint=lambda done, whole: progress.append((done, whole)),
    )

    assert len(stub.seen(UPLOAD_START)) == 1  # the video goes up once
    requests = [camel_keys(s.json) for s in stub.seen(GENERATE)]
    assert len(requests) == 3
    clips = [r["contents"][0]["parts"][0] for r in requests]
    assert [c["videoMetadata"] for c in clips] == [
        {"startOffset": "0.000s", "endOffset": "1390.000s"},
        {"startOffset": "1390.000s", "endOffset": "2810.000s"},
        {"startOffset": "2810.000s", "endOffset": "4200.000s"},
    ]
    shown = [prompt_inputs(request_text(r)) for r in requests]
    assert shown[0]["summary_so_far"] == ""
    assert shown[1]["summary_so_far"] == "Summary after part 1."  # carried forward
    assert shown[2]["summary_so_far"] == "Summary after part 2."
    assert shown[2]["previous_topic"] == {"title": "Topic 2", "start": 1390.0}
    # Each transcript segment goes to exactly one window.
    lines = [line for s in shown for line in s["transcript"].splitlines()]
    assert len(lines) == len(long_transcript()["segments"]) == len(set(lines))
    assert "Sentence number 47 " in shown[1]["transcript"]  # 1410 s
    assert shown[1]["scene_times"] == [1390.0, 2100.0]

    schemas.validate("ai/video_analysis", result.data)
    assert result.data["summary"] == "Summary after part 3."
    assert [(t["title"], t["start"], t["end"]) for t in result.data["topics"]] == [
        ("Topic 1", 0.0, 1390.0),
        ("Topic 2", 1390.0, 2810.0),
        ("Topic 3", 2810.0, 4200.0),
    ]
    assert result.data["key_terms"] == ["rivers", "term 1", "term 2", "term 3"]
    assert result.metering["calls"] == 3
    assert result.metering["prompt_version"] == "analyze_video_window@1"
    assert progress == [(1390.0, 4200.0), (2810.0, 4200.0), (4200.0, 4200.0)]


def test_gemini_keeps_a_short_lecture_in_one_unclipped_request(stub, make_gemini, video):
    stub.auto = True
    transcript = long_transcript(minutes=20)
    result = make_gemini().analyze_video(video, transcript, scene_times=SCENES[:3])

    (request,) = [camel_keys(s.json) for s in stub.seen(GENERATE)]
    assert "videoMetadata" not in request["contents"][0]["parts"][0]
    assert result.metering["prompt_version"] == "analyze_video@1"


class Cancelled(Exception):
    pass


def test_a_cancelled_course_stops_between_windows(stub, make_gemini, video):
    stub.auto = True

    def cancel(done: float, whole: float) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        make_gemini().analyze_video(video, long_transcript(), scene_times=SCENES, checkpoint=cancel)
    assert len(stub.seen(GENERATE)) == 1  # no window after the checkpoint that said stop


# --- OpenAI: windows by tokens of transcript ---------------------------------------------------


def test_openai_analyses_a_long_transcript_window_by_window(stub, make_openai, video):
    stub.auto = True  # the stub answers each window with its own topic and summary
    transcript = long_transcript()
    inputs = json.dumps(transcript)  # about the size of the request's inputs
    budget = windows.estimate_tokens(inputs) // 3
    result = make_openai(window_tokens=budget).analyze_video(video, transcript, scene_times=SCENES)

    requests = [s.json for s in stub.seen(CHAT)]
    assert [s.route for s in stub.seen()] == [CHAT] * len(requests)
    assert len(requests) >= 3
    texts = [r["messages"][1]["content"][0]["text"] for r in requests]
    shown = [prompt_inputs(t) for t in texts]
    for before, after in itertools.pairwise(shown):
        summary = f"Stub summary of the lecture up to {before['part']['end_s']:g} s."
        assert after["summary_so_far"] == summary
    assert all(windows.estimate_tokens(t) <= budget * 1.5 for t in texts)

    schemas.validate("ai/video_analysis", result.data)
    assert [t["title"] for t in result.data["topics"]] == [
        f"Part {n}" for n in range(1, len(requests) + 1)
    ]
    assert result.data["topics"][-1]["end"] == 4200.0
    assert result.data["summary"] == "Stub summary of the lecture up to 4200 s."
    assert result.metering["calls"] == len(requests)
    assert result.metering["prompt_version"] == "analyze_video_text_window@1"
