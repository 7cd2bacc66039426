"""Tests for offline transcription: espeak-ng speech in, the bundled tiny.en model, WER out."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import pytest

from handlers.media.speech import (
    MODEL_DIR_ENV,
    MODEL_PACKAGE,
    OFFLINE_ENVIRONMENT,
    Segment,
    SpeechModelMissing,
    Transcript,
    apply_offline_environment,
    model_dir,
    transcribe,
    word_error_rate,
)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
PASSAGE = (
    "The river carries water from the mountains down to the sea. "
    "Farmers use the rich soil of the valley to grow wheat and corn. "
    "Today we will learn how computers store numbers. "
    "Every number is written in binary, using only zeros and ones. "
    "Photosynthesis turns sunlight into chemical energy. "
    "Plants take in carbon dioxide and release oxygen into the air."
)
# tiny.en hears espeak-ng's robot voice badly at its default pace (WER ~0.2 on one sentence);
# 130 words a minute with 30 ms between words is closer to a lecturer and scores ~0.07.
ESPEAK = ("espeak-ng", "-v", "en-us", "-s", "130", "-g", "3")
TO_16K_MONO = ("-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le")
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)


# ---- word error rate ----------------------------------------------------------------------


def test_wer_is_zero_for_identical_text_whatever_case_and_punctuation() -> None:
    assert word_error_rate("Hello, World! Don't stop.", "hello world dont stop") == 0.0
    assert word_error_rate("well-known facts", "well known facts") == 0.0


def test_wer_counts_substitutions_insertions_and_deletions() -> None:
    assert word_error_rate("a b c d", "a x c d") == 0.25
    assert word_error_rate("a b c d", "a b c d e") == 0.25
    assert word_error_rate("a b c d", "a c d") == 0.25
    assert word_error_rate("a b c d", "") == 1.0
    assert word_error_rate("a b", "c d e f") == 2.0  # insertions may push it past 1


def test_wer_of_an_empty_reference() -> None:
    assert word_error_rate("", "") == 0.0
    assert word_error_rate(" ... ", "something") == 1.0


# ---- transcript value ---------------------------------------------------------------------


def test_transcript_round_trips_through_dict() -> None:
    transcript = Transcript(
        language="en",
        duration_s=4.5,
        segments=(Segment(start=0.0, end=2.0, text="one"), Segment(start=2.0, end=4.0, text="two")),
    )
    data = json.loads(json.dumps(transcript.to_dict()))
    assert Transcript.from_dict(data) == transcript
    assert transcript.text == "one two"


# ---- the model ----------------------------------------------------------------------------


def test_bundled_model_is_found() -> None:
    assert (model_dir() / "model.bin").is_file()


def test_missing_model_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(SpeechModelMissing, match=MODEL_PACKAGE):
        model_dir()


def test_a_model_without_its_tokenizer_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # faster-whisper would fetch the missing tokenizer.json from the Hub.
    (tmp_path / "model.bin").write_bytes(b"")
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(SpeechModelMissing, match=r"no Whisper tokenizer\.json"):
        model_dir()


def test_offline_environment_forces_the_network_switches_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    apply_offline_environment()
    assert {name: os.environ[name] for name in OFFLINE_ENVIRONMENT} == {
        "ORT_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


@pytest.fixture(scope="module")
def passage_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    raw, wav = folder / "raw.wav", folder / "passage.wav"
    subprocess.run([*ESPEAK, "-w", str(raw), PASSAGE], check=True)
    _to_16k_mono(raw, wav)
    return wav


@needs_espeak
def test_synthetic_speech_is_transcribed(passage_wav: Path) -> None:
    transcript = transcribe(passage_wav)
    assert transcript.language == "en"
    assert word_error_rate(PASSAGE, transcript.text) <= 0.15, transcript.text


@needs_espeak
def test_segments_are_ordered_and_inside_the_audio(passage_wav: Path) -> None:
    transcript = transcribe(passage_wav)
    duration = _wav_seconds(passage_wav)
    assert transcript.duration_s == pytest.approx(duration, abs=0.05)
    assert transcript.segments
    previous_end = 0.0
    for segment in transcript.segments:
        assert previous_end <= segment.start < segment.end <= duration + 0.05
        assert segment.text == segment.text.strip() != ""
        previous_end = segment.end


def test_silence_gives_no_segments(tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\x00\x00" * 16_000 * 3)
    transcript = transcribe(silent)
    assert transcript.segments == ()
    assert transcript.duration_s == pytest.approx(3.0, abs=0.05)


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not (SAMPLES / "lecture.mp4").is_file() or not (SAMPLES / "ground_truth.json").is_file(),
    reason="samples/lecture.mp4 and samples/ground_truth.json are not there",
)
def test_sample_lecture_is_transcribed(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "ground_truth.json").read_text())
    spoken = " ".join(slide["spoken"] for slide in truth["slides"])
    wav = tmp_path / "lecture.wav"
    _to_16k_mono(SAMPLES / "lecture.mp4", wav)
    transcript = transcribe(wav)
    # 0.13 where CTranslate2 multiplies with Intel MKL (Intel processors), 0.155 with its other
    # int8 backend (AMD EPYC): the same model and audio, other rounding. CT2_USE_MKL=1 gives
    # 0.13 there too but decodes 12x slower, so the bound covers both backends.
    assert word_error_rate(spoken, transcript.text) <= 0.16, transcript.text
    assert transcript.duration_s == pytest.approx(truth["duration"], abs=0.5)


# ---- helpers ------------------------------------------------------------------------------


def _to_16k_mono(source: Path, wav: Path) -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-y", "-loglevel", "error", "-i", str(source), *TO_16K_MONO, str(wav)],
        check=True,
    )


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


# ---- coverage: no voiced window may vanish -------------------------------------------------


def test_uncovered_finds_voiced_parts_no_segment_covers() -> None:
    from handlers.media.speech import uncovered

    voiced = [(0.0, 10.0), (12.0, 14.5), (20.0, 21.0), (30.0, 60.0)]
    segments = [
        Segment(start=0.2, end=4.0, text="a"),
        Segment(start=4.1, end=9.8, text="b"),
        Segment(start=31.0, end=40.0, text="c"),
    ]
    # (12, 14.5) had no text at all; (40, 60) is the tail of a stretch Whisper stopped in;
    # (20, 21) is too short to be worth a second decode.
    assert uncovered(voiced, segments, min_s=2.0) == [(12.0, 14.5), (40.0, 60.0)]


@pytest.mark.slow
@needs_espeak
def test_a_british_voice_lecture_loses_no_window(tmp_path: Path) -> None:
    """Four slides read by espeak-ng's en-gb voice: with conditioning on previous text,
    tiny.en dropped whole 30 s windows here (coverage 0.75 in one window, WER 0.27)."""
    import sys

    sys.path.insert(0, str(SAMPLES))
    import corpus

    from bridge.tooling.metrics import coverage, wer_whisper

    voice = corpus.Voice("en-gb", 150)
    pcm, stretches, start = b"", [], 0.0
    for deck in corpus.topic_slides(20, 4, seed=20):
        speech = corpus.speak(deck.spoken, voice, tmp_path)
        end = start + corpus.seconds(speech)
        stretches.append(
            {"start": start, "end": end + 0.8, "speech_end": end, "spoken": deck.spoken}
        )
        pcm += speech + corpus.silence(0.8)
        start = end + 0.8
    corpus.write_wav(pcm, tmp_path / "talk.wav")
    transcript = transcribe(tmp_path / "talk.wav")
    reference = " ".join(s["spoken"] for s in stretches)
    overall, worst = coverage(stretches, [s.to_dict() for s in transcript.segments])
    assert worst >= 0.9, (overall, worst, transcript.text)
    assert wer_whisper(reference, transcript.text) <= 0.15  # measured 0.13; the target is 0.12


@pytest.mark.slow
@needs_espeak
def test_no_segment_holds_sentences_said_far_apart(tmp_path: Path) -> None:
    """The corpus's teal-bar-big lecture (five slides read fast by a female espeak-ng voice),
    its audio taken from the video as prepare_video takes it: tiny.en stamped the last two
    slides' sentences (27 s) as one segment, whose words then all counted at its midpoint (a
    window seemed to have lost half its words, coverage 0.55) and went to one lesson."""
    import sys

    sys.path.insert(0, str(SAMPLES))
    import corpus

    from bridge.tooling.metrics import coverage

    corpus.build(tmp_path, "full", ["teal-bar-big"], tmp_path / "no-sdists", force=True)
    truth = json.loads((tmp_path / "teal-bar-big" / "truth.json").read_text())
    audio = tmp_path / "audio.wav"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i",
         str(tmp_path / "teal-bar-big" / "video.mp4"), *TO_16K_MONO, str(audio)],
        check=True,
    )  # fmt: skip
    transcript = transcribe(audio, word_timestamps=True)
    for segment in transcript.segments:
        inside = segment.text.rstrip(".!? ")
        assert segment.end - segment.start < 8.0 or not re.search(r"[.!?]\s", inside), segment
    segments = [s.to_dict() for s in transcript.segments]
    overall, worst = coverage(truth["stretches"], segments)
    assert worst >= 0.95, (overall, worst, transcript.text)
