"""The export writers: WebVTT captions, GIFT, Moodle XML and SCORM manifests, with markup and
any Unicode in every text."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from handlers.export import ExportRefused, chosen, gift, moodle_xml, scorm, webvtt
from tests.export_support import UNICODE, course, hostile, schema_for

HERE = Path(__file__).resolve().parents[1]  # tests/
GIFT_PEGJS = HERE / "browser" / "node_modules" / "gift-pegjs"
MOODLE_XSD = HERE.parent / "schemas" / "moodle" / "quiz.xsd"


def all_questions(c: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for m in c["modules"] for les in m["lessons"] for q in les["quiz"]]


# --- WebVTT --------------------------------------------------------------------------------


def test_cues_are_short_and_at_most_two_lines_of_42() -> None:
    long = " ".join(f"word{i}" for i in range(80))
    cjk = "日本語の講義" * 20  # no spaces at all
    segments = [
        {"start": 0.0, "end": 30.0, "text": long},
        {"start": 30.0, "end": 34.0, "text": cjk},
        {"start": 34.0, "end": 36.0, "text": "👩🏽‍🔬" * 30},
    ]
    cues = webvtt.cues(segments)
    assert all(c.end - c.start <= 7.0 + 1e-9 and len(c.lines) <= 2 for c in cues)
    assert all(len(line) <= 42 for c in cues for line in c.lines)
    assert " ".join(" ".join(c.lines) for c in cues[: len(cues) - 5]).startswith("word0 word1")
    assert "".join("".join(c.lines) for c in cues if "日" in c.lines[0]) == cjk  # nothing lost
    emoji = "".join("".join(c.lines) for c in cues if "🔬" in c.lines[0])
    assert emoji == "👩🏽‍🔬" * 30  # never cut inside a ZWJ sequence or before a skin tone


def test_webvtt_parses_under_webvtt_py_and_round_trips_text() -> None:
    import webvtt as webvtt_py

    c = hostile()
    text = webvtt.render(webvtt.course_segments(c))
    assert "<script>" not in text and "&lt;script&gt;" in text
    parsed = webvtt_py.from_string(text) if hasattr(webvtt_py, "from_string") else None
    if parsed is None:  # pragma: no cover - older webvtt-py
        parsed = webvtt_py.read_buffer(io.StringIO(text))
    captions = list(parsed)
    assert len(captions) == len(webvtt.cues(webvtt.course_segments(c)))
    spoken = " ".join(caption.raw_text.replace("\n", " ") for caption in captions)
    unescaped = spoken.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert unescaped == " ".join(s["text"] for s in webvtt.course_segments(c))
    assert UNICODE in unescaped


def test_timestamps() -> None:
    assert webvtt.timestamp(3725.5) == "01:02:05.500"
    assert webvtt.timestamp(0) == "00:00:00.000"


# --- GIFT ----------------------------------------------------------------------------------


def _gift_parse(text: str, tmp: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing (Debian: apt-get install nodejs)")
    if not GIFT_PEGJS.exists():
        pytest.skip(f"{GIFT_PEGJS} is missing (run .ci/npm.sh)")
    source = tmp / "quiz.gift"
    source.write_text(text, encoding="utf-8")
    script = (
        "const gift = require(process.argv[1]);"
        "const text = require('fs').readFileSync(process.argv[2], 'utf8');"
        "process.stdout.write(JSON.stringify(gift.parse(text)));"
    )
    out = subprocess.run(
        [node, "-e", script, str(GIFT_PEGJS), str(source)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    parsed: list[dict[str, Any]] = json.loads(out)
    return parsed


@pytest.mark.parametrize("variant", ["plain", "hostile"])
def test_gift_parses_with_gift_pegjs_into_the_same_questions(tmp_path: Path, variant: str) -> None:
    c = course() if variant == "plain" else hostile()
    parsed = _gift_parse(gift.render(c), tmp_path)
    categories = [p["title"] for p in parsed if p["type"] == "Category"]
    questions = [p for p in parsed if p["type"] != "Category"]
    lessons = [les for m in c["modules"] for les in m["lessons"]]
    assert categories == [gift.category_path(c["title"], les["title"]) for les in lessons]
    expected = all_questions(c)
    assert len(questions) == len(expected)
    for got, want in zip(questions, expected, strict=True):
        assert got["stem"]["format"] == "plain"
        assert got["globalFeedback"]["text"] == want["explanation"]
        if want["kind"] == "multiple_choice":
            assert got["type"] == "MC"
            assert got["stem"]["text"] == want["prompt"]
            assert [ch["text"]["text"] for ch in got["choices"]] == want["choices"]
            assert [ch["isCorrect"] for ch in got["choices"]] == [
                ch == want["answer"] for ch in want["choices"]
            ]
        else:
            assert got["type"] == "Short" and got["hasEmbeddedAnswers"]  # a missing word
            assert got["stem"]["text"] == want["prompt"]
            assert [ch["text"]["text"] for ch in got["choices"]] == [want["answer"]]
    if variant == "hostile":
        # Moodle's category path doubles a "/" inside a name; undone, the title is exact
        assert categories[0].split("/", 2)[2].replace("//", "/").startswith(c["title"] + "/")


# --- Moodle XML ----------------------------------------------------------------------------


def test_moodle_xml_validates_and_round_trips(tmp_path: Path) -> None:
    from lxml import etree

    c = hostile()
    data = moodle_xml.render(c)
    doc = etree.fromstring(data)
    schema = etree.XMLSchema(etree.parse(str(MOODLE_XSD)))
    assert schema.validate(doc), schema.error_log
    questions = doc.findall("question")
    assert [q.get("type") for q in questions].count("category") == 3
    real = [q for q in questions if q.get("type") != "category"]
    for element, want in zip(real, all_questions(c), strict=True):
        assert element.findtext("questiontext/text") == want["prompt"]
        assert element.findtext("generalfeedback/text") == want["explanation"]
        answers = {a.findtext("text"): a.get("fraction") for a in element.findall("answer")}
        assert answers[want["answer"]] == "100"
        assert element.get("type") == (
            "multichoice" if want["kind"] == "multiple_choice" else "shortanswer"
        )
    assert b"<script>" not in data
    broken = etree.fromstring(data.replace(b'type="multichoice"', b'type="essayish"', 1))
    assert not schema.validate(broken)  # the check is a real one


# --- SCORM ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "2004"])
def test_scorm_package_validates_against_the_published_xsds(version: scorm.Version) -> None:
    from lxml import etree

    c = hostile()
    buf = io.BytesIO()
    frames = {"frame_m1-l1.jpg": b"\xff\xd8jpeg"}
    scorm.write_package(buf, c, version=version, video=b"mp4", frames=frames)
    archive = zipfile.ZipFile(buf)
    names = set(archive.namelist())
    manifest = etree.fromstring(archive.read("imsmanifest.xml"))
    schema = schema_for(version)
    assert schema.validate(manifest), schema.error_log
    ns = {"cp": scorm.NS_12[""] if version == "1.2" else scorm.NS_2004[""]}
    items = manifest.findall(".//cp:item[@identifierref]", ns)
    assert [i.findtext("cp:title", namespaces=ns) for i in items] == [
        les["title"] for m in c["modules"] for les in m["lessons"]
    ]  # byte-exact
    hrefs = {f.get("href") for f in manifest.findall(".//cp:file", ns)}
    assert hrefs == names - {"imsmanifest.xml"}  # every file listed, every listed file there
    for name in names:
        assert not name.startswith("/") and ".." not in name
    for name in [n for n in names if n.endswith((".html", ".js", ".css"))]:
        text = archive.read(name).decode()
        assert "http://" not in text and "https://" not in text and "//" + "cdn" not in text
    sco = archive.read("lessons/m1-l1.html").decode()
    assert "<script>alert" not in sco and "&lt;script&gt;alert(1)&lt;/script&gt;" in sco
    assert sco.count("<script") == 3  # player.js, scorm.js and the (inert) JSON answer key
    assert f'data-scorm="{version}"' in sco and 'data-end="4"' in sco
    missing = archive.read("imsmanifest.xml").replace(b'identifier="org"', b"", 1)
    assert not schema.validate(etree.fromstring(missing))  # the check is a real one


def test_formats_are_chosen_in_order_and_unknown_ones_refused() -> None:
    assert chosen(["webvtt", "scorm12"]) == ["scorm12", "webvtt"]
    assert chosen(["all"]) == ["scorm12", "scorm2004", "gift", "moodle-xml", "webvtt"]
    with pytest.raises(ExportRefused, match="pdf"):
        chosen(["pdf"])
