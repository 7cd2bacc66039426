"""``coursegen work --processes N``: N worker processes on one ``--data``, each owning its
share of the courses (``bridge/partition.py``)."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.partition import Partition
    from bridge.settings import Settings


def work_processes(
    data: Path, count: int, *, until_idle: bool, workers: int, synthetic: bool
) -> list[dict[str, Any]]:
    """Run ``count`` worker processes on ``data`` (partition ``k`` of ``count`` each, with
    ``workers`` delivery threads) until they all return; their summaries, by partition.

    The processes are spawned, not forked: nothing of this process (its threads, its locks,
    its open connections) is carried into them. Ctrl-C reaches every one of them (one process
    group); each stops its runtime and reports itself interrupted."""
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[int, dict[str, Any]]] = ctx.Queue()
    children = [
        ctx.Process(
            target=_work_share,
            args=(str(data), k, count, until_idle, workers, synthetic, results),
            name=f"coursegen-work-{k}",
        )
        for k in range(count)
    ]
    for child in children:
        child.start()
    summaries = _collect(results, children)
    for child in children:
        child.join()
    for k, child in enumerate(children):
        if k not in summaries:
            summaries[k] = {"error": f"worker process {k} ended with exit code {child.exitcode}"}
    return [summaries[k] for k in range(count)]


def _collect(
    results: multiprocessing.Queue[tuple[int, dict[str, Any]]],
    children: Sequence[multiprocessing.process.BaseProcess],
) -> dict[int, dict[str, Any]]:
    """Every summary the processes send, until each has sent one or all have ended. A Ctrl-C
    here does not stop the collection: the children have it too, stop and report themselves
    interrupted, and their summaries are what the command prints."""
    summaries: dict[int, dict[str, Any]] = {}
    while len(summaries) < len(children):
        try:
            index, summary = results.get(timeout=0.5)
        except queue.Empty:
            if all(c.exitcode is not None for c in children):
                break  # every process ended; one without a summary died (it logged why)
            continue
        except KeyboardInterrupt:
            continue
        summaries[index] = summary
    return summaries


def _work_share(
    data: str,
    index: int,
    count: int,
    until_idle: bool,
    workers: int,
    synthetic: bool,
    results: multiprocessing.Queue[tuple[int, dict[str, Any]]],
) -> None:
    from bridge.partition import Partition
    from bridge.settings import Settings

    summary = work_here(
        Path(data),
        Settings.from_env(),
        until_idle=until_idle,
        workers=workers,
        synthetic=synthetic,
        partition=Partition(index, count),
    )
    results.put((index, {"partition": index, **summary}))


def work_here(
    data: Path,
    settings: Settings,
    *,
    until_idle: bool,
    workers: int,
    synthetic: bool,
    partition: Partition | None = None,
) -> dict[str, Any]:
    """The embedded runtime on ``data`` in this process (its ``partition`` of the courses,
    every course when None) run as a worker until idle or Ctrl-C; its summary."""
    from bridge.partition import WHOLE
    from bridge.runtime.embedded import embedded
    from bridge.runtime.processes import run_worker

    steps = None
    if synthetic:
        from bridge.tooling.synthetic import noop_steps
        from statemachine.pipeline import default_pipeline

        steps = noop_steps(default_pipeline())
    rt = embedded(data, settings=settings, steps=steps, partition=partition or WHOLE)
    try:
        return run_worker(rt, until_idle=until_idle, workers=workers)
    except KeyboardInterrupt:
        return {"interrupted": True}
    finally:
        rt.close()
