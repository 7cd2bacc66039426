"""Build the evaluation corpus: generated lectures and packaged real speech, each with truth.

Every item is made here from local inputs only (espeak-ng, Pillow, ffmpeg, files that Debian
and PyPI packages ship); nothing is downloaded while building. Items whose source package is
not installed are skipped with a message that says how to install it. The manifest
(``manifest.json`` in the output folder) records each item's source, licence, tier and truth.

    python samples/corpus.py --out samples/corpus [--tier ci|full|long] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_lecture import encode, find_font

RATE = 16000
FPS = 10
PAUSE_S = 0.8
TIERS = ("ci", "full", "long")
ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "corpus"
# Where `pip download` leaves the source packages that carry real speech (see --help).
DEFAULT_SDISTS = DEFAULT_OUT / "sdists"
ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
BEAMER_PDF = Path("/usr/share/doc/texlive-doc/latex/beamer/beamerexample-conference-talk.pdf")
POCKETSPHINX_SDIST = "pocketsphinx-5.1.1.tar.gz"
PYWHISPERCPP_SDIST = "pywhispercpp-1.5.1.tar.gz"
SDIST_HINT = (
    "pip download --no-deps --no-binary pywhispercpp,pocketsphinx "
    "pywhispercpp==1.5.1 pocketsphinx==5.1.1 -d samples/corpus/sdists"
)


class SourceMissing(RuntimeError):
    """A packaged source an item needs is not on this machine."""


# --- templates and voices -----------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    width: int = 1280
    height: int = 720
    background: tuple[int, int, int] = (245, 243, 236)
    bar: tuple[int, int, int] | None = (28, 72, 120)
    bar_height: int = 140
    title_ink: tuple[int, int, int] = (255, 255, 255)
    body_ink: tuple[int, int, int] = (30, 30, 30)
    accent: tuple[int, int, int] = (28, 72, 120)
    title_size: int = 64
    body_size: int = 44
    show_title: bool = True
    footer: str = ""


LIGHT = Template()
DARK = Template(
    background=(22, 26, 34),
    bar=None,
    title_ink=(250, 204, 90),
    body_ink=(226, 230, 236),
    accent=(250, 204, 90),
    title_size=60,
)
ORANGE_BAR = Template(
    bar=(228, 112, 36),
    bar_height=120,
    title_ink=(255, 255, 255),
    title_size=46,
    body_size=40,
    accent=(228, 112, 36),
)
TEAL_BAR_BIG = Template(
    background=(255, 255, 255),
    bar=(0, 128, 128),
    bar_height=170,
    title_ink=(255, 255, 210),
    title_size=84,
    body_size=40,
    accent=(0, 128, 128),
)
PORTRAIT = Template(width=720, height=1280, title_size=52, body_size=36, bar_height=150)
NO_TITLE = Template(bar=None, show_title=False, body_size=46)


@dataclass(frozen=True)
class Voice:
    name: str = "en-us"
    wpm: int = 140


# --- content ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slide:
    title: str
    bullets: tuple[str, ...]
    spoken: str


# Title, subject noun phrase and three facts per topic: enough for a 36-slide deck.
TOPICS: tuple[tuple[str, str, tuple[str, str, str]], ...] = tuple(
    (t["title"], t["subject"], tuple(t["facts"]))
    for t in json.loads((ROOT / "corpus_topics.json").read_text())
)

OPENERS = (
    "Our next topic is {title}.",
    "Let us turn to {title}.",
    "Now we come to {title}.",
    "This part is about {title}.",
)
LINKS = (
    "The key point is that {subject} {fact}.",
    "In practice {subject} {fact}.",
    "It also matters that {subject} {fact}.",
    "Remember that {subject} {fact}.",
)


def topic_slides(first: int, count: int, *, seed: int, extra_sentences: int = 0) -> list[Slide]:
    """``count`` slides from the topic bank, starting at ``first``; the narration says the title."""
    rng = random.Random(seed)
    slides = []
    for k in range(count):
        title, subject, facts = TOPICS[(first + k) % len(TOPICS)]
        spoken = [rng.choice(OPENERS).format(title=title)]
        for fact in facts:
            spoken.append(rng.choice(LINKS).format(subject=subject, fact=fact))
        for n in range(extra_sentences):
            fact = facts[n % len(facts)]
            spoken.append(f"For example, {subject} {fact}, which we will use again later.")
        bullets = tuple(fact[0].upper() + fact[1:] for fact in facts)
        slides.append(Slide(title=title, bullets=bullets, spoken=" ".join(spoken)))
    return slides


# --- drawing ------------------------------------------------------------------------------


def draw_slide(slide: Slide, template: Template, number: int, total: int, path: Path) -> None:
    t = template
    image = Image.new("RGB", (t.width, t.height), t.background)
    draw = ImageDraw.Draw(image)
    bold = str(find_font(bold=True))
    regular = str(find_font(bold=False))
    title_font = ImageFont.truetype(bold, t.title_size)
    body_font = ImageFont.truetype(regular, t.body_size)
    small = ImageFont.truetype(regular, 26)
    margin = 60 if t.width > t.height else 40
    top = 60
    if t.show_title:
        if t.bar is not None:
            draw.rectangle((0, 0, t.width, t.bar_height), fill=t.bar)
            y = t.bar_height // 2
        else:
            y = 90
        title_lines = _wrap(slide.title, title_font, t.width - 2 * margin)
        step = int(t.title_size * 1.15)
        y -= step * (len(title_lines) - 1) // 2
        for line in title_lines:
            draw.text((margin, y), line, font=title_font, fill=t.title_ink, anchor="lm")
            y += step
        top = max(t.bar_height if t.bar else 0, y) + 60
    y = top + t.body_size
    for bullet in slide.bullets:
        lines = _wrap(bullet, body_font, t.width - 2 * margin - 70)
        draw.ellipse((margin + 10, y - 11, margin + 32, y + 11), fill=t.accent)
        for line in lines:
            draw.text((margin + 70, y), line, font=body_font, fill=t.body_ink, anchor="lm")
            y += int(t.body_size * 1.3)
        y += int(t.body_size * 0.9)
    draw.line((margin, t.height - 70, t.width - margin, t.height - 70), fill=t.accent, width=3)
    if t.footer:
        draw.text((margin, t.height - 35), t.footer, font=small, fill=t.accent, anchor="lm")
    label = f"{number} / {total}"
    draw.text((t.width - margin, t.height - 35), label, font=small, fill=t.accent, anchor="rm")
    image.save(path, format="PNG")


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def draw_speaker(caption: str, path: Path, *, width: int = 1280, height: int = 720) -> None:
    """A static 'camera' frame: a figure at a lectern and a small name caption."""
    image = Image.new("RGB", (width, height), (88, 96, 110))
    draw = ImageDraw.Draw(image)
    cx = width // 2
    draw.rectangle((0, int(height * 0.78), width, height), fill=(60, 52, 46))
    draw.ellipse((cx - 70, 150, cx + 70, 310), fill=(222, 190, 160))
    draw.rounded_rectangle((cx - 160, 320, cx + 160, int(height * 0.8)), 40, fill=(40, 60, 90))
    draw.rectangle((cx - 220, int(height * 0.62), cx + 220, height), fill=(120, 84, 52))
    font = ImageFont.truetype(str(find_font(bold=False)), 26)
    draw.rectangle((40, height - 90, 520, height - 40), fill=(20, 20, 20))
    draw.text((60, height - 65), caption, font=font, fill=(240, 240, 240), anchor="lm")
    image.save(path, format="PNG")


# --- audio --------------------------------------------------------------------------------


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def pcm16k(path: Path) -> bytes:
    """Any audio file as s16le mono 16 kHz samples."""
    done = subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            *("-f", "s16le", "-ac", "1"),
            *("-ar", str(RATE), "-"),
        ],
        check=True,
        capture_output=True,
    )
    return done.stdout


def speak(text: str, voice: Voice, tmp: Path) -> bytes:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SourceMissing("espeak-ng not found: apt-get install -y espeak-ng")
    wav = tmp / "speech.wav"
    subprocess.run(
        [espeak, "-v", voice.name, "-s", str(voice.wpm), "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    return pcm16k(wav)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * round(seconds * RATE)


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / RATE


def write_wav(pcm: bytes, path: Path) -> None:
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)


# --- items --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    name: str
    tier: str
    kind: str  # "slides" | "talk" (no slides, topic sections) | "speech" (no structure)
    source: str
    licence: str
    build: Callable[[Item, Path, Path], dict[str, Any]]
    notes: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def build_slides(item: Item, out: Path, tmp: Path) -> dict[str, Any]:
    """A slide lecture from params: slides, template, voice, order (slide indexes shown)."""
    p = item.params
    slides: list[Slide] = p["slides"]
    template: Template = p["template"]
    voice: Voice = p["voice"]
    order: list[int] = p.get("order") or list(range(len(slides)))
    images, durations, pcm_parts, stretches = [], [], [], []
    start = 0.0
    for position, index in enumerate(order):
        slide = slides[index]
        revisit = index in order[:position]
        spoken = (
            p.get("revisit_text", "Back to {title} for a moment. ").format(title=slide.title)
            + slide.spoken
            if revisit
            else slide.spoken
        )
        image = tmp / f"slide_{position}.png"
        draw_slide(slide, template, index + 1, len(slides), image)
        pcm = speak(spoken, voice, tmp)
        frames = math.ceil((seconds(pcm) + PAUSE_S) * FPS)
        duration = frames / FPS
        speech_s = seconds(pcm)
        pcm += silence(duration - speech_s)
        images.append(image)
        durations.append(duration)
        pcm_parts.append(pcm)
        end = round(start + duration, 3)
        stretches.append(
            {
                "start": round(start, 3),
                "end": end,
                "speech_end": round(start + speech_s, 3),
                "title": slide.title if template.show_title else None,
                "slide": index,
                "spoken": spoken,
            }
        )
        start = end
    return _finish(out, tmp, images, durations, pcm_parts, stretches, boundaries=True)


def build_talk(item: Item, out: Path, tmp: Path) -> dict[str, Any]:
    """No slides: one static speaker frame; sections on distinct topics are the lessons."""
    p = item.params
    voice: Voice = p["voice"]
    pcm_parts, stretches = [], []
    start = 0.0
    for slide in p["sections"]:
        pcm = speak(slide.spoken, voice, tmp)
        speech_s = seconds(pcm)
        pcm += silence(PAUSE_S)
        stretches.append(
            {
                "start": round(start, 3),
                "end": round(start + seconds(pcm), 3),
                "speech_end": round(start + speech_s, 3),
                "title": slide.title,
                "spoken": slide.spoken,
            }
        )
        pcm_parts.append(pcm)
        start += seconds(pcm)
    image = tmp / "speaker.png"
    draw_speaker(p.get("caption", "Guest lecture"), image)
    return _finish(out, tmp, [image], [start], pcm_parts, stretches, boundaries=True)


def build_speech(item: Item, out: Path, tmp: Path) -> dict[str, Any]:
    """Real recorded utterances joined with short pauses, over a static frame."""
    utterances: list[tuple[Path, str]] = item.params["utterances"](tmp)
    gap = float(item.params.get("gap_s", 1.0))
    pcm_parts, stretches = [], []
    start = 0.0
    for path, text in utterances:
        pcm = pcm16k(path)
        speech_s = seconds(pcm)
        pcm += silence(gap)
        stretches.append(
            {
                "start": round(start, 3),
                "end": round(start + seconds(pcm), 3),
                "speech_end": round(start + speech_s, 3),
                "title": None,
                "spoken": text,
            }
        )
        pcm_parts.append(pcm)
        start += seconds(pcm)
    image = tmp / "speaker.png"
    draw_speaker(item.params.get("caption", "Recorded speech"), image)
    return _finish(out, tmp, [image], [start], pcm_parts, stretches, boundaries=False)


def _finish(
    out: Path,
    tmp: Path,
    images: Sequence[Path],
    durations: Sequence[float],
    pcm_parts: Sequence[bytes],
    stretches: list[dict[str, Any]],
    *,
    boundaries: bool,
) -> dict[str, Any]:
    narration = tmp / "narration.wav"
    write_wav(b"".join(pcm_parts), narration)
    video = tmp / "video.mp4"
    encode(list(images), [round(d, 3) for d in durations], narration, video)
    shutil.move(video, out / "video.mp4")
    truth = {
        "duration": round(sum(durations), 3),
        "boundaries": boundaries,
        "stretches": stretches,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


# --- packaged real speech -----------------------------------------------------------------


def asterisk_prompts(count: int, *, min_words: int = 6) -> Callable[[Path], list[tuple[Path, str]]]:
    def pick(tmp: Path) -> list[tuple[Path, str]]:
        if not ASTERISK_TEXT.is_file() or not ASTERISK_DIR.is_dir():
            raise SourceMissing("apt-get install -y asterisk-core-sounds-en-wav")
        found = []
        with gzip.open(ASTERISK_TEXT, "rt", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
        for line in lines:
            name, _, text = line.partition(":")
            text = text.strip()
            wav = ASTERISK_DIR / f"{name.strip()}.wav"
            # Plain prose only: no [tone descriptions], digits or spelled symbols.
            plain = not any(ch in text for ch in "[]0123456789#*/@&") and "..." not in text
            if plain and len(text.split()) >= min_words and wav.is_file():
                found.append((wav, text))
        if len(found) < count:
            raise SourceMissing(f"only {len(found)} asterisk prompts usable, {count} wanted")
        step = len(found) / count  # spread over the alphabet, not 30 "agent-" prompts
        return [found[int(k * step)] for k in range(count)]

    return pick


def _sdist_member(sdists: Path, archive: str, member: str, tmp: Path) -> Path:
    path = sdists / archive
    if not path.is_file():
        raise SourceMissing(f"{path} missing: {SDIST_HINT}")
    with tarfile.open(path) as tar:
        source = tar.extractfile(member)
        if source is None:
            raise SourceMissing(f"{member} not in {path}")
        target = tmp / Path(member).name
        target.write_bytes(source.read())
    return target


def librivox(sdists: Path) -> Callable[[Path], list[tuple[Path, str]]]:
    base = "pocketsphinx-5.1.1/test/data/librivox/sense_and_sensibility_01_austen_64kb-"

    def pick(tmp: Path) -> list[tuple[Path, str]]:
        out = []
        for clip in ("0870", "0880", "0890", "0920", "0930"):
            wav = _sdist_member(sdists, POCKETSPHINX_SDIST, f"{base}{clip}.wav", tmp)
            text = _sdist_member(sdists, POCKETSPHINX_SDIST, f"{base}{clip}.txt", tmp)
            out.append((wav, text.read_text().strip()))
        return out

    return pick


JFK_TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def jfk(sdists: Path) -> Callable[[Path], list[tuple[Path, str]]]:
    def pick(tmp: Path) -> list[tuple[Path, str]]:
        member = "pywhispercpp-1.5.1/whisper.cpp/samples/jfk.wav"
        return [(_sdist_member(sdists, PYWHISPERCPP_SDIST, member, tmp), JFK_TEXT)]

    return pick


# --- a real beamer deck -------------------------------------------------------------------


def build_beamer(item: Item, out: Path, tmp: Path) -> dict[str, Any]:
    """Beamer's own example talk rendered page by page; the narration reads each frame."""
    try:
        import pypdfium2 as pdfium
    except ImportError as err:
        raise SourceMissing("pip install pypdfium2") from err
    if not BEAMER_PDF.is_file():
        raise SourceMissing("apt-get install -y texlive-latex-recommended-doc")
    voice: Voice = item.params["voice"]
    pdf = pdfium.PdfDocument(str(BEAMER_PDF))
    # Pages 2-24: each has the section line and the frame title below it (the outline page
    # and the summary have no section line, the appendix no navigation bar).
    pages = range(2, min(len(pdf), int(item.params["pages"]) + 2))
    images, durations, pcm_parts, stretches = [], [], [], []
    start = 0.0
    for number in pages:
        page = pdf[number]
        lines = [ln.strip() for ln in page.get_textpage().get_text_range().splitlines()]
        lines = [ln for ln in lines[1:] if ln]  # line 0 is the navigation bar
        section, title, body = lines[0], lines[1], [lines[0], *lines[2:]]
        scale = 1280 / page.get_width()
        bitmap = page.render(scale=scale).to_pil().convert("RGB")
        image = tmp / f"page_{number}.png"
        bitmap.crop(
            (0, 0, bitmap.width - bitmap.width % 2, bitmap.height - bitmap.height % 2)
        ).save(image)
        words = [w for w in " ".join(body[1:4]).split() if w.isalpha() and len(w) > 1]
        spoken = f"{title}. " + " ".join(words[:40])
        pcm = speak(spoken, voice, tmp)
        speech_s = seconds(pcm)
        duration = math.ceil((speech_s + PAUSE_S) * FPS) / FPS
        pcm += silence(duration - speech_s)
        if stretches and stretches[-1]["title"] == title and stretches[-1]["page_text"] == section:
            # An overlay of the same frame: the slide goes on; it is no boundary.
            stretches[-1]["end"] = round(start + duration, 3)
            stretches[-1]["spoken"] += " " + spoken
            stretches[-1]["speech_end"] = round(start + speech_s, 3)
        else:
            stretches.append(
                {
                    "start": round(start, 3),
                    "end": round(start + duration, 3),
                    "speech_end": round(start + speech_s, 3),
                    "title": title,
                    "page_text": section,
                    "spoken": spoken,
                }
            )
        images.append(image)
        durations.append(duration)
        pcm_parts.append(pcm)
        start += duration
    for stretch in stretches:
        stretch.pop("page_text", None)
    return _finish(out, tmp, images, durations, pcm_parts, stretches, boundaries=True)


# --- the manifest -------------------------------------------------------------------------

GENERATED = "generated by samples/corpus.py (espeak-ng narration, Pillow slides)"
OURS = "project's own (generated)"


def corpus(sdists: Path = DEFAULT_SDISTS) -> list[Item]:
    """Every corpus item, in the order the table lists them."""
    deck = topic_slides(0, 36, seed=36)
    revisit = topic_slides(12, 5, seed=5)
    talk_sections = [topic_slides(n, 1, seed=n, extra_sentences=2)[0] for n in (28, 4, 16, 10, 31)]
    return [
        Item(
            "sample",
            "ci",
            "slides",
            "samples/make_lecture.py (the committed sample)",
            OURS,
            build_sample,
        ),
        Item(
            "jfk",
            "ci",
            "speech",
            "PyPI pywhispercpp 1.5.1 sdist: whisper.cpp/samples/jfk.wav",
            "public domain (US government work); whisper.cpp MIT",
            build_speech,
            params={"utterances": jfk(sdists)},
        ),
        Item(
            "librivox",
            "ci",
            "speech",
            "PyPI pocketsphinx 5.1.1 sdist: test/data/librivox (5 clips)",
            "public domain (LibriVox); pocketsphinx BSD-2-Clause",
            build_speech,
            params={"utterances": librivox(sdists), "gap_s": 0.8},
        ),
        Item(
            "orange-bar",
            "ci",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "white titles in an orange header bar, en-gb voice",
            {
                "slides": topic_slides(20, 4, seed=20),
                "template": ORANGE_BAR,
                "voice": Voice("en-gb", 150),
            },
        ),
        Item(
            "talk-short",
            "ci",
            "talk",
            GENERATED,
            OURS,
            build_talk,
            "no slides: a static speaker frame, 3 topic sections",
            {
                "sections": talk_sections[:3],
                "voice": Voice("en-us", 150),
                "caption": "Dr Ada Byron",
            },
        ),
        Item(
            "dark",
            "full",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "dark template, no bar, en-gb-scotland voice, ~110 s",
            {
                "slides": topic_slides(6, 6, seed=6, extra_sentences=1),
                "template": DARK,
                "voice": Voice("en-gb-scotland", 145),
            },
        ),
        Item(
            "teal-bar-big",
            "full",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "large pale-yellow titles on a teal bar, female variant voice, fast",
            {
                "slides": topic_slides(24, 5, seed=24),
                "template": TEAL_BAR_BIG,
                "voice": Voice("en-us+f3", 170),
            },
        ),
        Item(
            "portrait",
            "full",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "720x1280 portrait slides",
            {
                "slides": topic_slides(2, 4, seed=2),
                "template": PORTRAIT,
                "voice": Voice("en-us", 135),
            },
        ),
        Item(
            "no-title",
            "full",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "bullets only, no title line",
            {
                "slides": topic_slides(30, 4, seed=30),
                "template": NO_TITLE,
                "voice": Voice("en-029", 140),
            },
        ),
        Item(
            "revisit",
            "full",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "returns to an earlier slide",
            {
                "slides": revisit,
                "template": LIGHT,
                "voice": Voice("en-us", 150),
                "order": [0, 1, 2, 3, 1, 4],
            },
        ),
        Item(
            "deck-36",
            "full",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "36 slides sharing one template (~6 min)",
            {
                "slides": deck,
                "template": replace(LIGHT, footer="Computing Ideas"),
                "voice": Voice("en-us", 165),
            },
        ),
        Item(
            "talk",
            "full",
            "talk",
            GENERATED,
            OURS,
            build_talk,
            "no slides: static speaker frame, 5 topic sections (~3 min)",
            {
                "sections": talk_sections,
                "voice": Voice("en-gb", 145),
                "caption": "Prof. Grace Hopper",
            },
        ),
        Item(
            "asterisk",
            "full",
            "speech",
            "Debian asterisk-core-sounds-en-wav 1.6.1 (Allison Smith) + core-sounds-en.txt",
            "CC-BY-SA-3.0",
            build_speech,
            params={"utterances": asterisk_prompts(40), "gap_s": 0.7},
        ),
        Item(
            "beamer",
            "full",
            "slides",
            "Debian texlive-latex-recommended-doc: beamerexample-conference-talk.pdf "
            "(rendered with pypdfium2, narration by espeak-ng)",
            "LPPL-1.3c / GPL-2+ (beamer)",
            build_beamer,
            "a real beamer deck with overlays; frame titles from the PDF text",
            {"pages": 23, "voice": Voice("en-us", 160)},
        ),
        Item(
            "deck-36-long",
            "long",
            "slides",
            GENERATED,
            OURS,
            build_slides,
            "36 slides x ~53 s sharing one template (~32 min)",
            {
                "slides": topic_slides(0, 36, seed=37, extra_sentences=6),
                "template": replace(LIGHT, footer="Computing Ideas"),
                "voice": Voice("en-gb", 150),
            },
        ),
    ]


def build_sample(item: Item, out: Path, tmp: Path) -> dict[str, Any]:
    """The committed sample as it is (not rebuilt: its truth is the one the tests use)."""
    truth = json.loads((ROOT / "ground_truth.json").read_text())
    shutil.copy2(ROOT / "lecture.mp4", out / "video.mp4")
    stretches = [
        {
            "start": s["start"],
            "end": s["end"],
            "speech_end": s["end"] - PAUSE_S,
            "title": s["title"],
            "slide": s["index"],
            "spoken": s["spoken"],
        }
        for s in truth["slides"]
    ]
    body = {"duration": truth["duration"], "boundaries": True, "stretches": stretches}
    (out / "truth.json").write_text(json.dumps(body, indent=2) + "\n")
    return body


def selected(items: Sequence[Item], tier: str, only: Sequence[str]) -> list[Item]:
    if only:
        return [item for item in items if item.name in only]
    upto = TIERS.index(tier)
    return [item for item in items if TIERS.index(item.tier) <= upto]


def build(
    out: Path, tier: str, only: Sequence[str], sdists: Path, *, force: bool
) -> dict[str, Any]:
    """Build the chosen items into out/NAME/ and (re)write out/manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"items": {}}
    for item in selected(corpus(sdists), tier, only):
        folder = out / item.name
        if not force and (folder / "video.mp4").is_file() and (folder / "truth.json").is_file():
            print(f"corpus: {item.name}: up to date")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                with tempfile.TemporaryDirectory(prefix=f"corpus-{item.name}-") as tmp:
                    truth = item.build(item, folder, Path(tmp))
            except SourceMissing as err:
                print(f"corpus: {item.name}: skipped ({err})", file=sys.stderr)
                continue
            print(f"corpus: {item.name}: {truth['duration']:.1f} s, "
                  f"{len(truth['stretches'])} stretches")  # fmt: skip
        manifest["items"][item.name] = {
            "tier": item.tier,
            "kind": item.kind,
            "video": f"{item.name}/video.mp4",
            "truth": f"{item.name}/truth.json",
            "source": item.source,
            "licence": item.licence,
            "notes": item.notes,
        }
    order = [item.name for item in corpus(sdists)]
    manifest["items"] = {k: manifest["items"][k] for k in order if k in manifest["items"]}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tier", choices=TIERS, default="full")
    parser.add_argument("--only", nargs="*", default=(), help="item names (overrides --tier)")
    parser.add_argument("--sdists", type=Path, default=DEFAULT_SDISTS,
                        help=f"folder with the source packages: {SDIST_HINT}")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="rebuild items that exist")
    args = parser.parse_args(argv)
    build(args.out, args.tier, args.only, args.sdists, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
