"""Make the README's images from the project itself: diagrams, and dashboard screenshots.

    python scripts/screenshots.py [--out docs/img]

Writes course-lifecycle.svg, task-lifecycle.svg, pipeline.svg and diagrams.md (mermaid) from
the definitions; then runs courses in a scratch folder (the sample lecture through the real
offline pipeline, plus synthetic ones that fail, pause and run), serves the dashboard on
127.0.0.1 and photographs it with headless Chromium (Debian ``chromium`` + PyPI playwright).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge import diagrams  # noqa: E402
from bridge.ops import operations  # noqa: E402
from bridge.runtime.embedded import Runtime, embedded  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from bridge.tooling.synthetic import noop_steps  # noqa: E402
from bridge.web.dashboard.stack import in_background, local_stack  # noqa: E402
from handlers.registry import StepContext, StepFn, StepResult  # noqa: E402
from statemachine.pipeline import default_pipeline  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
FILES = {"course": "course-lifecycle", "task": "task-lifecycle", "pipeline": "pipeline"}
SETTINGS = {"COURSEGEN_STORE": "sqlite"}


def write_diagrams(out: Path) -> None:
    blocks = []
    for name, stem in FILES.items():
        g = diagrams.graph(name)
        (out / f"{stem}.svg").write_text(diagrams.svg(g) + "\n", encoding="utf-8")
        blocks.append(f"### {g.title}\n\n```mermaid\n{diagrams.mermaid(g)}```\n")
    (out / "diagrams.md").write_text("\n".join(blocks), encoding="utf-8")
    print(f"wrote {', '.join(f'{s}.svg' for s in FILES.values())} and diagrams.md to {out}")


def _steps(delay: float = 0.0, broken: str | None = None) -> dict[str, StepFn]:
    def wrap(name: str, step: StepFn) -> StepFn:
        def run(ctx: StepContext) -> StepResult:
            time.sleep(delay)
            if name == broken:
                error = type("QuotaExceeded", (Exception,), {"retryable": False})
                raise error("the AI provider refused: quota exceeded for this project")
            return step(ctx)

        return run

    return {n: wrap(n, s) for n, s in noop_steps(default_pipeline()).items()}


def _ingest(rt: Runtime, title: str, uri: str = "https://example.com/lecture.mp4") -> str:
    message = {"videoUri": uri, "title": title}
    return rt.bridge.ingest(message, message_id=f"shot-{uuid.uuid4()}", actor="screenshots")


def _wait(rt: Runtime, course_id: str, statuses: tuple[str, ...], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = rt.store.head(course_id)
        if head is not None and head.status in statuses:
            return
        time.sleep(0.05)
    raise SystemExit(f"{course_id} did not reach {statuses}")


def real_course(data: Path) -> str:
    """The sample lecture through the real offline pipeline (frames, transcript, quizzes)."""
    from bridge.cli.run import run_video

    summary = run_video(
        ROOT / "samples" / "lecture.mp4",
        title="How Rivers Shape Landscapes",
        out=data / "published",
        data=data,
        live=False,
        settings=Settings.from_env(SETTINGS),
    )
    if summary["status"] != "completed":
        raise SystemExit(f"the sample did not complete: {summary}")
    return str(summary["course_id"])


def other_courses(data: Path) -> threading.Thread:
    """A failed and a paused course, then one that keeps running while the pictures are taken."""
    settings = Settings.from_env(SETTINGS)
    rt = embedded(data, steps=_steps(broken="analyze_video"), settings=settings)
    failed = _ingest(rt, "Introduction to Thermodynamics")
    paused = _ingest(rt, "Cell Biology, Week 3")
    operations.pause(rt.store, rt.bridge, paused, operator="ana", reason="waiting for AI quota")
    rt.dispatcher.start(2)
    _wait(rt, failed, ("failed",))
    rt.dispatcher.wait_idle(10)
    rt.close()

    slow = embedded(data, steps=_steps(delay=1.5), settings=settings)
    _ingest(slow, "Linear Algebra: Eigenvalues")
    slow.dispatcher.start(2)

    def finish() -> None:
        time.sleep(30)
        slow.close()

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    time.sleep(4.5)  # a few steps in: the list shows it part-way
    return thread


def photograph(url: str, course_id: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        page.goto(url)
        expect(page.locator("#rows tr[data-course]")).to_have_count(4)
        time.sleep(0.5)
        page.screenshot(path=str(out / "dashboard-courses.png"), full_page=True)
        page.goto(f"{url}/courses/{course_id}")
        expect(page.locator("#verification")).to_contain_text("verified")
        expect(page.locator("#outputs img").first).to_be_visible()
        time.sleep(1.0)
        page.screenshot(path=str(out / "dashboard-course.png"), full_page=True)
        browser.close()
    print(f"wrote dashboard-courses.png and dashboard-course.png to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--diagrams-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_diagrams(args.out)
    if args.diagrams_only:
        return
    with tempfile.TemporaryDirectory(prefix="coursegen-shots-") as tmp:
        data = Path(tmp)
        course_id = real_course(data)
        running = other_courses(data)
        stack = local_stack(data, settings=Settings.from_env(SETTINGS), workers=0)
        server = in_background(stack.app)
        try:
            photograph(server.url, course_id, args.out)
        finally:
            server.stop()
            stack.close()
            running.join(timeout=40)


if __name__ == "__main__":
    main()
