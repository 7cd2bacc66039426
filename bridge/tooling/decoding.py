"""Whisper decoding settings measured on corpus items: WER, coverage and decode time each.

    python -m bridge.tooling.decoding --corpus samples/corpus --only jfk librivox asterisk

Transcription only (no pipeline), so a sweep over settings stays cheap.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.tooling import metrics
from bridge.tooling.evaluate import load_corpus, markdown
from handlers.media.speech import DECODING, Decoding, model_label, transcribe

_BEAM5 = dataclasses.replace(DECODING, beam_size=5)
_BEAM5_FREE = dataclasses.replace(_BEAM5, condition_on_previous_text=False)
# The names are those of the sweeps in docs/quality.md, each spelled out from DECODING (the
# default now: beam 1, conditioned, re-decode gaps). The model is the one
# COURSEGEN_WHISPER_MODEL_DIR names (unset: the bundled tiny.en).
SETTINGS: dict[str, Decoding] = {
    "default (beam 1, conditioned, re-decode gaps)": DECODING,
    "old default (beam 1, conditioned)": dataclasses.replace(DECODING, redecode_gaps=False),
    "beam 1, unconditioned": dataclasses.replace(
        DECODING, condition_on_previous_text=False, redecode_gaps=False
    ),
    "beam 5, conditioned, re-decode gaps": _BEAM5,
    "beam 5, unconditioned": dataclasses.replace(_BEAM5_FREE, redecode_gaps=False),
    "beam 5, unconditioned, re-decode gaps": _BEAM5_FREE,
    "beam 5, no temperature fallback": dataclasses.replace(_BEAM5_FREE, temperature=(0.0,)),
    "beam 5, VAD silence 500 ms": dataclasses.replace(_BEAM5_FREE, vad_min_silence_ms=500),
}


def sweep(corpus: Path, only: Sequence[str], names: Sequence[str]) -> list[dict[str, Any]]:
    items = load_corpus(corpus, only=only)
    rows = []
    for name in names:
        decoding = SETTINGS[name]
        for item in items:
            started = time.perf_counter()
            transcript = transcribe(item.video, decoding=decoding)
            seconds = time.perf_counter() - started
            stretches = item.truth["stretches"]
            reference = " ".join(str(s["spoken"]) for s in stretches)
            segments = [seg.to_dict() for seg in transcript.segments]
            overall, worst = metrics.coverage(stretches, segments)
            rows.append(
                {
                    "item": f"{item.name} / {name}",
                    "kind": item.kind,
                    "duration_s": item.truth["duration"],
                    "wer_whisper": metrics.wer_whisper(reference, transcript.text),
                    "wer_project": metrics.wer_project(reference, transcript.text),
                    "coverage": overall,
                    "coverage_min": worst,
                    "wall_s": seconds,
                }
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("samples/corpus"))
    parser.add_argument("--only", nargs="+", default=["jfk", "librivox", "asterisk"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args(argv)
    print(f"model: {model_label()}\n")
    print(markdown(sweep(args.corpus, args.only, args.settings)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
