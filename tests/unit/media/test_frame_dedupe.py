"""The near-duplicate filter of key frames, on slides drawn by samples/make_lecture.py: a long
deck's slides share one template (header bar, footer, bullet layout), so their perceptual
hashes are close; slides whose words differ must all be kept, repeats of one slide dropped."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from handlers.media.frames import _candidate_of, _dedupe, hamming

MAKE_LECTURE = Path(__file__).resolve().parents[3] / "samples" / "make_lecture.py"
DISTANCE = 6  # extract_frames' default dedupe_distance


@pytest.fixture(scope="module")
def make_lecture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_lecture", MAKE_LECTURE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def frame_jpeg(png: Path, out: Path, quality: int = 85) -> Path:
    """What extract_frames hands the filter: a 640 px wide JPEG of the frame."""
    with Image.open(png) as image:
        image.resize((640, 360), Image.Resampling.BILINEAR).save(out, "JPEG", quality=quality)
    return out


@pytest.fixture(scope="module")
def deck(make_lecture: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """24 slides of the long lecture's template, one JPEG each."""
    folder = tmp_path_factory.mktemp("deck")
    frames = []
    for i, slide in enumerate(make_lecture.long_slides(24)):
        png = folder / f"slide-{i:02d}.png"
        make_lecture.draw_slide(slide, i + 1, png, total=None, footer=make_lecture.LONG_FOOTER)
        frames.append(frame_jpeg(png, folder / f"slide-{i:02d}.jpg"))
    return frames


def test_the_deck_hashes_alike_so_the_hash_alone_cannot_tell_its_slides_apart(deck):
    hashes = [_candidate_of("scene", float(i), p).phash for i, p in enumerate(deck)]
    close = [(a, b) for a, b in itertools.combinations(range(len(deck)), 2)]
    close = [(a, b) for a, b in close if hamming(hashes[a], hashes[b]) <= DISTANCE]
    assert close  # the reproduction: some distinct slides are "near-duplicates" by hash


def test_slides_whose_text_differs_are_all_kept(deck):
    candidates = [_candidate_of("scene", i * 20.0, p) for i, p in enumerate(deck)]
    kept = _dedupe(candidates, DISTANCE)
    assert [c.t for c in kept] == [c.t for c in candidates]


def test_repeats_of_one_slide_are_dropped(deck, tmp_path):
    """The interval frames of a slide on screen (re-encoded, so not byte-identical) go; the
    scene frame that opened it stays, and so does the next slide."""
    candidates = [_candidate_of("scene", 0.0, deck[0]), _candidate_of("scene", 20.0, deck[1])]
    for n, t in enumerate((10.0, 30.0)):
        source = deck[0] if t < 20 else deck[1]
        again = frame_jpeg(source, tmp_path / f"again-{n}.jpg", quality=70)
        candidates.append(_candidate_of("interval", t, again))
    kept = _dedupe(candidates, DISTANCE)
    assert [(c.kind, c.t) for c in kept] == [("scene", 0.0), ("scene", 20.0)]


def test_a_slide_shown_again_after_another_is_kept(deck):
    """The lecture went back to it (the corpus's revisit item): the return is a lesson of its
    own, not speech added to the slide before it."""
    candidates = [_candidate_of("scene", t, deck[i]) for t, i in ((0.0, 0), (20.0, 1), (40.0, 0))]
    kept = _dedupe(candidates, DISTANCE)
    assert [c.t for c in kept] == [0.0, 20.0, 40.0]


def test_an_interval_frame_of_the_same_instant_gives_way_to_the_scene_frame(deck, tmp_path):
    again = frame_jpeg(deck[1], tmp_path / "again.jpg", quality=70)
    candidates = [
        _candidate_of("scene", 0.0, deck[0]),
        _candidate_of("interval", 20.0, again),
        _candidate_of("scene", 20.0, deck[1]),
    ]
    kept = _dedupe(candidates, DISTANCE)
    assert [(c.kind, c.t) for c in kept] == [("scene", 0.0), ("scene", 20.0)]
