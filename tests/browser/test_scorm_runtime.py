"""The SCORM packages opened by a real SCORM runtime (npm scorm-again) in headless Chromium,
and the learner's course.html: the player seeks, captions load as cues, quizzes score, the
LMS records what a lesson did, markup in the course never runs, and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.course import Player, render_html
from handlers.export import scorm, webvtt
from tests.browser.static_server import serving
from tests.export_support import HOSTILE, UNICODE, course, hostile, make_frame, make_video

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
SCORM_AGAIN = HERE / "node_modules" / "scorm-again" / "dist" / "scorm-again.js"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOT = ROOT / "docs" / "img" / "scorm-sco-in-harness.png"


def _sync_api() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api", reason="PyPI playwright is missing")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    if not SCORM_AGAIN.exists():
        pytest.skip(f"{SCORM_AGAIN} is missing (run .ci/npm.sh)")
    return sync_api


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """The harness, both SCORM packages unzipped and the course page, served on 127.0.0.1."""
    _sync_api()
    root = tmp_path_factory.mktemp("site")
    media = tmp_path_factory.mktemp("media")
    video = make_video(media / "video.mp4")
    the_course = hostile(course())
    names = [
        f["name"] for m in the_course["modules"] for les in m["lessons"] for f in les["key_frames"]
    ]
    frames = {name: make_frame(media / name) for name in names}
    for version, folder in (("1.2", "scorm12"), ("2004", "scorm2004")):
        zipped = root / f"{folder}.zip"
        scorm.write_package(zipped, the_course, version=version, video=video, frames=frames)
        with zipfile.ZipFile(zipped) as archive:
            archive.extractall(root / folder)
    shutil.copy(HERE / "harness" / "index.html", root / "harness.html")
    shutil.copy(HERE / "harness" / "harness.js", root / "harness.js")
    shutil.copy(SCORM_AGAIN, root / "scorm-again.js")
    page_dir = root / "course"
    (page_dir / "media" / "frames").mkdir(parents=True)
    shutil.copy(video, page_dir / "media" / "video.mp4")
    for name, path in frames.items():
        shutil.copy(path, page_dir / "media" / "frames" / name)
    (page_dir / "course.vtt").write_text(webvtt.render(webvtt.course_segments(the_course)))
    for module in the_course["modules"]:
        for lesson in module["lessons"]:
            for frame in lesson["key_frames"]:
                frame["ref"] = (page_dir / "media" / "frames" / frame["name"]).as_uri()
    player = Player(video="media/video.mp4", captions="course.vtt")
    html = render_html(the_course, frames_base=page_dir.as_uri() + "/", player=player)
    (page_dir / "course.html").write_text(html, encoding="utf-8")
    with serving(root) as url:
        yield url, the_course


@pytest.fixture(scope="module")
def browser(site: tuple[str, dict[str, Any]]) -> Iterator[Any]:
    sync_api = _sync_api()
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """A page that records every request it makes and every dialog a script opens."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(30_000)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def only_loopback(self, base: str) -> None:
        outside = [u for u in self.requests if not (u.startswith(base + "/") or u == "about:blank")]
        assert self.requests and not outside, outside


def watch_and_answer(frame: Any, *, right: bool) -> dict[str, Any]:
    """Captions, a seek, the lesson's span played to its end, the quiz answered."""
    cues = frame.evaluate(
        """() => new Promise((resolve, reject) => {
            const track = document.querySelector('video').textTracks[0];
            track.mode = 'showing';
            const t0 = Date.now();
            (function poll() {
              if (track.cues && track.cues.length) return resolve(
                Array.from(track.cues).map(
                  c => ({start: c.startTime, end: c.endTime, text: c.text})));
              if (Date.now() - t0 > 15000) return reject(new Error('no cues'));
              setTimeout(poll, 100);
            })();
        })"""
    )
    line = frame.locator("ol.transcript button.seek").nth(1)
    target = float(line.get_attribute("data-seek"))
    line.click()
    frame.wait_for_function(
        "t => Math.abs(document.querySelector('video').currentTime - t) < 0.6", arg=target
    )
    seeked = frame.evaluate("document.querySelector('video').currentTime")
    frame.evaluate(
        """() => { const v = document.querySelector('video'); v.muted = true;
                   v.currentTime = parseFloat(v.dataset.end) - 0.8; return v.play(); }"""
    )
    frame.wait_for_selector("html[data-watched=true]")
    key = frame.evaluate(
        "() => JSON.parse(document.getElementById("
        "document.querySelector('form.quiz').dataset.key).textContent)"
    )
    for i, q in enumerate(key):
        box = frame.locator(f'[data-question="{i}"]')
        if q["kind"] == "choice":
            letter = q["correct"] if right or i > 0 else ("b" if q["correct"] != "b" else "a")
            box.locator(f'input[value="{letter}"]').check()
        else:
            box.locator("input[type=text]").fill(q["answer"])
    frame.locator("form.quiz button[type=submit]").click()
    score = frame.locator("form.quiz .score").inner_text()
    feedback = frame.locator(".feedback").all_inner_texts()
    return {
        "cues": cues,
        "seek": (target, seeked),
        "key": key,
        "score": score,
        "feedback": feedback,
    }


def open_sco(browser: Any, base: str, package: str, index: int, *, right: bool) -> dict[str, Any]:
    tab = Tab(browser)
    page = tab.page
    page.goto(f"{base}/harness.html")
    items = page.evaluate(f"harness.load('/{package}/imsmanifest.xml')")
    page.evaluate(f"harness.open({index})")
    page.wait_for_function("() => window.frames.sco && window.frames.sco.coursegenScorm")
    frame = page.frame(name="sco")
    frame.wait_for_selector("#lms-status:has-text('Connected')")
    played = watch_and_answer(frame, right=right)
    title = frame.evaluate("document.querySelector('h1').textContent")
    sco_errors = frame.evaluate("window.coursegenScorm.errors")
    if index == 0 and package == "scorm12" and os.environ.get("COURSEGEN_UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
    page.evaluate("harness.close()")
    page.wait_for_function("harness.terminated")
    calls = page.evaluate("harness.calls")
    cmi = page.evaluate("harness.cmi()")
    tab.only_loopback(base)
    dialogs = tab.dialogs
    page.close()
    return {**played, "items": items, "title": title, "calls": calls, "cmi": cmi,
            "sco_errors": sco_errors, "dialogs": dialogs}  # fmt: skip


def methods(calls: list[dict[str, Any]]) -> list[str]:
    return [c["method"] for c in calls if "GetLastError" not in c["method"]]


def sets(calls: list[dict[str, Any]], setter: str) -> dict[str, str]:
    return {c["args"][0]: c["args"][1] for c in calls if c["method"] == setter}


def lesson_of(the_course: dict[str, Any], index: int) -> dict[str, Any]:
    return [les for m in the_course["modules"] for les in m["lessons"]][index]


def common_checks(run: dict[str, Any], lesson: dict[str, Any]) -> None:
    assert run["dialogs"] == []  # <script>alert(1)</script> in every text: nothing ran
    assert run["title"] == lesson["title"]  # markup and Unicode, byte-exact, as text
    assert UNICODE in run["items"][0]["title"] and HOSTILE in run["items"][0]["title"]
    texts = [cue["text"] for cue in run["cues"]]
    assert len(texts) >= 3 and any(UNICODE.split()[0] in t for t in texts)
    assert all(cue["end"] - cue["start"] <= 7.0 + 1e-6 for cue in run["cues"])
    target, seeked = run["seek"]
    assert target == lesson["segments"][1]["start"] and abs(seeked - target) < 0.6
    assert run["sco_errors"] == []
    assert [c for c in run["calls"] if c["error"] != "0"] == []


def test_scorm12_lesson_all_right_passes(browser: Any, site: tuple[str, dict[str, Any]]) -> None:
    base, the_course = site
    run = open_sco(browser, base, "scorm12", 0, right=True)
    common_checks(run, lesson_of(the_course, 0))
    called = methods(run["calls"])
    assert called[0] == "LMSInitialize" and called[-2:] == ["LMSCommit", "LMSFinish"]
    assert all(
        c["result"] == "true" for c in run["calls"] if c["method"] in ("LMSCommit", "LMSFinish")
    )
    values = sets(run["calls"], "LMSSetValue")
    assert values["cmi.core.score.raw"] == "2" and values["cmi.core.score.max"] == "2"
    assert values["cmi.core.score.min"] == "0"
    core = run["cmi"]["core"]
    assert core["lesson_status"] == "passed"
    assert core["score"] == {"raw": "2", "min": "0", "max": "2"}
    interactions = run["cmi"]["interactions"]
    assert [i["result"] for i in interactions.values()] == ["correct", "correct"]
    assert [i["id"] for i in interactions.values()] == ["m1-l1-q1", "m1-l1-q2"]
    assert [i["type"] for i in interactions.values()] == ["choice", "fill-in"]
    assert run["score"] == "Score: 2 / 2"


def test_scorm12_lesson_with_a_wrong_answer_fails(
    browser: Any, site: tuple[str, dict[str, Any]]
) -> None:
    base, the_course = site
    run = open_sco(browser, base, "scorm12", 1, right=False)
    common_checks(run, lesson_of(the_course, 1))
    core = run["cmi"]["core"]
    assert core["lesson_status"] == "failed"  # 1 of 2 is 50 %, under the mastery score of 80
    assert core["score"] == {"raw": "1", "min": "0", "max": "2"}
    interactions = list(run["cmi"]["interactions"].values())
    assert [i["result"] for i in interactions] == ["wrong", "correct"]
    assert interactions[0]["correct_responses"]["0"]["pattern"] == run["key"][0]["correct"]
    assert run["feedback"][0].startswith("Not quite")
    assert methods(run["calls"])[-1] == "LMSFinish"


def test_scorm2004_lessons_report_success_and_completion(
    browser: Any, site: tuple[str, dict[str, Any]]
) -> None:
    base, the_course = site
    good = open_sco(browser, base, "scorm2004", 0, right=True)
    common_checks(good, lesson_of(the_course, 0))
    assert methods(good["calls"])[0] == "Initialize"
    assert methods(good["calls"])[-2:] == ["Commit", "Terminate"]
    cmi = good["cmi"]
    assert cmi["completion_status"] == "completed" and cmi["success_status"] == "passed"
    assert float(cmi["score"]["scaled"]) == 1.0
    interactions = list(cmi["interactions"].values())
    assert [i["result"] for i in interactions] == ["correct", "correct"]
    assert interactions[0]["description"] == lesson_of(the_course, 0)["quiz"][0]["prompt"]
    assert interactions[1]["learner_response"] == "日本語"

    bad = open_sco(browser, base, "scorm2004", 2, right=False)
    common_checks(bad, lesson_of(the_course, 2))
    cmi = bad["cmi"]
    assert cmi["completion_status"] == "completed" and cmi["success_status"] == "failed"
    assert float(cmi["score"]["scaled"]) == 0.5
    assert [i["result"] for i in cmi["interactions"].values()] == ["incorrect", "correct"]


def test_the_course_page_seeks_loads_captions_and_scores(
    browser: Any, site: tuple[str, dict[str, Any]]
) -> None:
    base, the_course = site
    tab = Tab(browser)
    page = tab.page
    page.goto(f"{base}/course/course.html")
    assert page.title() == the_course["title"]
    frame = page.main_frame
    cues = frame.evaluate(
        """() => new Promise((resolve, reject) => {
            const track = document.querySelector('video').textTracks[0];
            track.mode = 'showing'; const t0 = Date.now();
            (function poll() {
              if (track.cues && track.cues.length) return resolve(track.cues.length);
              if (Date.now() - t0 > 15000) return reject(new Error('no cues'));
              setTimeout(poll, 100); })(); })"""
    )
    assert cues == len(webvtt.cues(webvtt.course_segments(the_course)))
    for selector in ("#m1-l2 ol.transcript button.seek", "#m2-l1 .frames button.seek",
                     "nav button.seek"):  # fmt: skip
        button = page.locator(selector).last
        target = float(button.get_attribute("data-seek"))
        button.click()
        page.wait_for_function(
            "t => Math.abs(document.querySelector('video').currentTime - t) < 0.6", arg=target
        )
    form = page.locator("#quiz-m1-l1")
    key = page.evaluate("JSON.parse(document.getElementById('quiz-m1-l1-key').textContent)")
    form.locator(f'input[value="{key[0]["correct"]}"]').check()
    form.locator("input[type=text]").fill(key[1]["answer"])
    form.locator("button[type=submit]").click()
    assert form.locator(".score").inner_text() == "Score: 2 / 2"
    assert page.locator("#total-score").inner_text().startswith("Course score: 2 / 6")
    feedback = form.locator(".feedback.right").all_inner_texts()
    assert len(feedback) == 2 and feedback[0].startswith("Correct.")
    assert HOSTILE in page.locator("h1").inner_text()  # shown as text
    assert tab.dialogs == []
    tab.only_loopback(base)
    page.close()
