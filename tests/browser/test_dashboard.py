"""The live dashboard in headless Chromium: a course runs and the page shows it completing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.web.dashboard.stack import in_background, local_stack
from handlers.registry import StepContext, StepFn, StepResult
from statemachine.pipeline import default_pipeline

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
STEP_SECONDS = 0.2


def _browser_or_skip() -> Any:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="PyPI playwright is not installed (pip install playwright)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    return sync_api


def slow_steps(seconds: float = STEP_SECONDS) -> dict[str, StepFn]:
    """The synthetic no-op steps, each taking ``seconds`` so the page sees progress."""

    def slow(step: StepFn) -> StepFn:
        def run(ctx: StepContext) -> StepResult:
            time.sleep(seconds)
            return step(ctx)

        return run

    return {name: slow(fn) for name, fn in noop_steps(default_pipeline()).items()}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    stack = local_stack(
        tmp_path, settings=settings, steps=noop_steps(default_pipeline()), workers=0
    )
    server = in_background(stack.app)
    try:
        yield server.url, tmp_path
    finally:
        server.stop()
        stack.close()


@pytest.fixture
def page(site: tuple[str, Path]) -> Iterator[Any]:
    sync_api = _browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(30_000)
            yield tab
        finally:
            browser.close()


def test_course_page_follows_a_running_course_to_completion(
    site: tuple[str, Path], page: Any
) -> None:
    url, data = site
    rt = embedded(
        data, steps=slow_steps(), settings=Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    )
    try:
        message = {"videoUri": "https://example.com/lecture.mp4", "title": "Browser test lecture"}
        course_id = rt.bridge.ingest(message, message_id=f"browser-{uuid.uuid4()}", actor="test")

        expect = _browser_or_skip().expect
        page.goto(f"{url}/courses/{course_id}")
        status = page.locator("#status")
        # Nothing runs yet: the page shows the course started and its first step scheduled.
        page.wait_for_selector('#tasks tr[data-task="prepare_video"]')
        assert status.inner_text() in ("requested", "running")
        assert page.locator('#tasks tr[data-task="finalize"]').count() == 0

        rt.dispatcher.start(4)
        page.wait_for_selector(
            '#tasks tr[data-task="prepare_video"] .badge[data-status="succeeded"]'
        )
        seen_mid_run = status.inner_text()
        page.wait_for_selector(
            '#tasks tr[data-task="finalize"] .badge[data-status="succeeded"]', timeout=60_000
        )
        expect(status).to_have_text("completed")
        page.wait_for_selector('svg[data-diagram="course"] g.node.hl[data-node="completed"]')
        expect(page.locator("#verification")).to_contain_text("verified")
        head = rt.store.head(course_id)
        assert head is not None
        # Every task of the DAG: its steps, with each fan-out's shards (no-op steps report 4).
        every_task = len(head.snapshot["tasks"])
    finally:
        rt.close()

    fan_outs = [s for s in default_pipeline().steps.values() if s.fan_out]
    assert every_task == len(default_pipeline().steps) + len(fan_outs) * 3
    assert seen_mid_run == "running"  # the page was live while steps completed
    tasks = page.locator("#tasks tbody tr")
    assert tasks.count() == every_task
    assert page.locator('#tasks .badge[data-status="succeeded"]').count() == every_task
    bars = page.locator('#gantt .seg[data-outcome="succeeded"]')
    assert bars.count() == every_task
    assert "verified" in page.locator("#verification").inner_text()
    # Only the current course state is highlighted; every pipeline step shows succeeded.
    assert page.locator('svg[data-diagram="course"] g.node.hl').count() == 1
    done = page.locator('svg[data-diagram="pipeline"] g.node.st-succeeded')
    assert done.count() == len(default_pipeline().order)
    events = page.locator("#events tbody tr")
    assert events.count() == rt.store.head(course_id).version


def test_course_list_filters(site: tuple[str, Path], page: Any) -> None:
    url, data = site
    rt = embedded(
        data,
        steps=noop_steps(default_pipeline()),
        settings=Settings.from_env({"COURSEGEN_STORE": "sqlite"}),
    )
    try:
        for title in ("Linear algebra", "Organic chemistry"):
            rt.bridge.ingest(
                {"videoUri": "https://example.com/v.mp4", "title": title},
                message_id=f"list-{uuid.uuid4()}",
                actor="test",
            )
    finally:
        rt.close()
    page.goto(url)
    expect = _browser_or_skip().expect
    expect(page.locator("#rows tr[data-course]")).to_have_count(2)
    page.fill('input[name="q"]', "chem")
    expect(page.locator("#rows tr[data-course]")).to_have_count(1)
    assert "Organic chemistry" in page.locator("#rows").inner_text()
    page.select_option('select[name="status"]', "completed")
    page.wait_for_selector("#rows td.muted")
    assert page.locator("#rows tr[data-course]").count() == 0
