"""A function of main.py under functions-framework with synthetic steps (cloud-local tests).

Exactly what ``functions-framework --source main.py --target T --signature-type http`` serves,
except that the runtime main.py builds gets no-op steps that take ``--step-seconds`` each and
leave a marker file when they start (``$TMPDIR/coursegen-synthetic/<course>/<task>``): media
and AI are replaced, nothing else (transport, store, auth, environment stay the real ones).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from handlers.registry import StepContext, StepFn, StepResult


def started_marker(root: Path, course_id: str, task: str) -> Path:
    """Where a synthetic step notes that it started (``task`` may name a shard: a#0)."""
    return root / "coursegen-synthetic" / course_id / task.replace("#", "-")


def slow(steps: Mapping[str, StepFn], seconds: float, root: Path) -> dict[str, StepFn]:
    """Each step of ``steps``, marked as started and then taking ``seconds`` to run."""

    def wrap(step: StepFn) -> StepFn:
        def run(ctx: StepContext) -> StepResult:
            marker = started_marker(root, ctx.course_id, ctx.task.name)
            marker.parent.mkdir(parents=True, exist_ok=True)
            with marker.open("a") as f:
                f.write(f"{ctx.attempt} {time.time()}\n")
            time.sleep(seconds)
            return step(ctx)

        return run

    return {name: wrap(step) for name, step in steps.items()}


def synthetic_runtime(seconds: float) -> Callable[[], Any]:
    """A stand-in for main.runtime: the same cloud runtime, built on first use (in the
    serving worker, after gunicorn forks), with synthetic steps."""
    lock = threading.Lock()
    built: dict[str, Any] = {}

    def runtime() -> Any:
        with lock:
            if "rt" not in built:
                from bridge.runtime.cloud import cloud_runtime
                from bridge.settings import Settings
                from bridge.tooling.synthetic import noop_steps
                from statemachine.pipeline import default_pipeline

                root = Path(tempfile.gettempdir())
                steps = slow(noop_steps(default_pipeline()), seconds, root)
                built["rt"] = cloud_runtime(Settings.from_env(), steps=steps)
            return built["rt"]

    return runtime


def main(argv: Sequence[str] | None = None) -> int:
    import functions_framework
    from functions_framework._http import create_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--signature-type", default="http", choices=["http"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--step-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        args.target, args.source, args.signature_type
    )
    served = sys.modules[Path(args.source).stem]  # the module functions-framework loaded
    served.runtime = synthetic_runtime(args.step_seconds)  # type: ignore[attr-defined]
    os.environ.setdefault("FUNCTION_TARGET", args.target)
    create_server(app, False).run(args.host, args.port)  # type: ignore[no-untyped-call]
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
