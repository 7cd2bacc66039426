"""The step DAG, loaded from ``schemas/pipeline.json``: queues, dependencies, fan-out; and
``Pipelines``, every stored version of it (``schemas/pipelines/``), which courses are pinned to."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any

import schemas
from statemachine.envelope import canonical
from statemachine.errors import UnknownPipeline
from statemachine.upcast import UNPINNED_PIPELINE_VERSION

if TYPE_CHECKING:
    from statemachine.state import CourseState

FINAL_STEP = "finalize"
CLOUD_TASKS_MAX_DEADLINE_S = 1800  # an HTTP task's dispatch deadline is at most 30 min
FRAMES_PER_MINUTE = 6  # extract_frames keeps at most this many key frames a minute
MIN_MAX_FRAMES = 120


@dataclass(frozen=True, slots=True)
class RetryConfig:
    max_attempts: int
    min_backoff_s: float
    max_backoff_s: float
    max_doublings: int
    max_retry_duration_s: float

    def backoff(self, retry: int) -> float:
        """Delay before retry number ``retry`` (1-based), as Cloud Tasks computes it."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        if retry <= self.max_doublings + 1:
            return min(self.max_backoff_s, self.min_backoff_s * float(2 ** (retry - 1)))
        linear = self.min_backoff_s * float(2**self.max_doublings)
        top = min(self.max_backoff_s, linear)
        return min(self.max_backoff_s, top + linear * (retry - self.max_doublings - 1))


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    retry: RetryConfig
    max_dispatches_per_s: float
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class FanOut:
    source: str
    count_field: str
    max_shards: int


@dataclass(frozen=True, slots=True)
class Chunking:
    """Time slicing of a step's input: pieces of at most ``max_s`` seconds that overlap by
    ``overlap_s`` on each side of a cut (the stitch removes the overlap)."""

    max_s: float
    overlap_s: float


@dataclass(frozen=True, slots=True)
class Budget:
    """A task's worst case on one vCPU: ``fixed_s + per_unit_s x`` its largest input, in the
    unit of ``input``: seconds of the longest video, seconds of a chunk, frames of a shard."""

    input: str
    fixed_s: float
    per_unit_s: float


@dataclass(frozen=True, slots=True)
class Limits:
    max_video_s: float = 4 * 3600.0
    safety: float = 0.5  # a worst case may use at most this share of the task's timeout


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    queue: str
    after: tuple[str, ...]
    timeout_s: int
    fan_out: FanOut | None
    provider: str | None
    chunk: Chunking | None = None
    cpu: float = 1.0
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    queues: Mapping[str, Queue]
    steps: Mapping[str, Step]
    order: tuple[str, ...]  # topological, stable in definition order
    limits: Limits = Limits()
    version: int = 0  # the definition's number (``Pipelines``); 0: built by hand
    digest: str = ""  # ``digest_of`` its document; empty: built by hand

    def largest_input(self, step: str) -> float:
        """The largest input one task of ``step`` gets, in its budget's unit."""
        budget = self.steps[step].budget
        if budget is None:
            return 0.0
        if budget.input == "chunk":
            chunk = self.steps[step].chunk or _chunk_of(self)
            return chunk.max_s
        if budget.input == "shard":
            fan = self.steps[step].fan_out
            frames = max(MIN_MAX_FRAMES, self.limits.max_video_s / 60 * FRAMES_PER_MINUTE)
            return -(-frames // fan.max_shards) if fan else frames
        return self.limits.max_video_s

    def worst_case_s(self, step: str) -> float | None:
        """The longest one task of ``step`` can run (its budget at its largest input)."""
        budget = self.steps[step].budget
        if budget is None:
            return None
        return budget.fixed_s + budget.per_unit_s * self.largest_input(step)

    def unbounded(self) -> dict[str, str]:
        """Steps whose worst case does not fit well inside their timeout (or whose timeout,
        also the dispatch deadline, is over Cloud Tasks' maximum): step -> why."""
        out: dict[str, str] = {}
        for name, step in self.steps.items():
            worst = self.worst_case_s(name)
            room = step.timeout_s * self.limits.safety
            if step.timeout_s > CLOUD_TASKS_MAX_DEADLINE_S:
                out[name] = f"timeout {step.timeout_s} s is over {CLOUD_TASKS_MAX_DEADLINE_S} s"
            elif worst is None:
                out[name] = "no budget declared"
            elif worst > room:
                out[name] = f"worst case {worst:.0f} s over {room:.0f} s of {step.timeout_s} s"
        return out

    def queue_of(self, step: str) -> Queue:
        return self.queues[self.steps[step].queue]

    def downstream(self, step: str) -> set[str]:
        out: set[str] = set()
        frontier = [step]
        while frontier:
            current = frontier.pop()
            for other in self.steps.values():
                if current in other.after and other.name not in out:
                    out.add(other.name)
                    frontier.append(other.name)
        return out


def parse(doc: Mapping[str, Any]) -> Pipeline:
    """Build and check a pipeline from its JSON document (already schema-valid)."""
    queues = {name: _queue(name, q) for name, q in doc["queues"].items()}
    steps = {name: _step(name, s) for name, s in doc["steps"].items()}
    for step in steps.values():
        if step.queue not in queues:
            raise ValueError(f"step {step.name}: unknown queue {step.queue!r}")
        for dep in step.after:
            if dep not in steps:
                raise ValueError(f"step {step.name}: unknown dependency {dep!r}")
        if step.fan_out and step.fan_out.source not in step.after:
            raise ValueError(f"step {step.name}: fan-out source must be a dependency")
    order = _topological(steps)
    given = doc.get("limits")
    limits = Limits(float(given["maxVideoSeconds"]), float(given["safety"])) if given else Limits()
    if FINAL_STEP not in steps:
        raise ValueError(f"the pipeline has no {FINAL_STEP!r} step")
    stranded = [s for s in steps if s != FINAL_STEP and FINAL_STEP not in _reach(s, steps)]
    if stranded:
        raise ValueError(f"steps that never reach {FINAL_STEP}: {stranded}")
    return Pipeline(queues, steps, order, limits, int(doc["version"]), digest_of(doc))


def digest_of(doc: Mapping[str, Any]) -> str:
    """sha256 (hex) of a pipeline document's canonical JSON (sorted keys, no whitespace,
    UTF-8), without its ``$schema``: the same for any formatting of the file and wherever it
    lies (``pipeline.json`` and ``pipelines/N.json`` point at the schema differently)."""
    body = {k: v for k, v in doc.items() if k != "$schema"}
    return hashlib.sha256(canonical(body)).hexdigest()


def _queue(name: str, q: Mapping[str, Any]) -> Queue:
    r = q["retry"]
    retry = RetryConfig(
        r["maxAttempts"],
        float(r["minBackoffSeconds"]),
        float(r["maxBackoffSeconds"]),
        r["maxDoublings"],
        float(r["maxRetryDurationSeconds"]),
    )
    limits = q["rateLimits"]
    return Queue(
        name, retry, float(limits["maxDispatchesPerSecond"]), limits["maxConcurrentDispatches"]
    )


def _step(name: str, s: Mapping[str, Any]) -> Step:
    fan = s.get("fanOut")
    fan_out = FanOut(fan["from"], fan["countField"], fan["maxShards"]) if fan else None
    cost = s.get("budget")
    budget = (
        Budget(cost["input"], float(cost["fixedSeconds"]), float(cost["secondsPerUnit"]))
        if cost
        else None
    )
    piece = s.get("chunk")
    chunk = Chunking(float(piece["maxSeconds"]), float(piece["overlapSeconds"])) if piece else None
    return Step(
        name,
        s["queue"],
        tuple(s["after"]),
        s["resources"]["timeoutSeconds"],
        fan_out,
        s.get("provider"),
        chunk,
        float(s["resources"]["cpu"]),
        budget,
    )


def _chunk_of(pipeline: Pipeline) -> Chunking:
    found = [s.chunk for s in pipeline.steps.values() if s.chunk is not None]
    if not found:
        raise ValueError("a chunk budget needs a step with a chunk setting")
    return found[0]


def _topological(steps: Mapping[str, Step]) -> tuple[str, ...]:
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError(f"the pipeline has a cycle: {' -> '.join((*path, name))}")
        visiting.add(name)
        for dep in steps[name].after:
            visit(dep, (*path, name))
        visiting.discard(name)
        done.add(name)
        order.append(name)

    for name in steps:
        visit(name, ())
    return tuple(order)


def _reach(start: str, steps: Mapping[str, Step]) -> set[str]:
    children: dict[str, list[str]] = {n: [] for n in steps}
    for s in steps.values():
        for dep in s.after:
            children[dep].append(s.name)
    seen: set[str] = set()
    frontier = [start]
    while frontier:
        for nxt in children[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


@dataclass(frozen=True)
class Pipelines:
    """Every pipeline definition a course can be pinned to, by version, and the ``current``
    one, which new courses get. A course runs on the version it was requested with (or last
    migrated to) for its whole life: ``of(state)`` is the pipeline to ``decide`` it with.

    Built once per process (``default_pipelines``); ``of`` is a dict lookup and a string
    comparison, cheap enough for every advance."""

    versions: Mapping[int, Pipeline]
    current: int
    # The current pipeline with every version's queues and steps (the current definition where
    # several name one): what transports and the task endpoint look queues and steps up in, as
    # a task of a course on an earlier version still goes to its queue and runs its step.
    merged: Pipeline = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current not in self.versions:
            raise ValueError(f"current pipeline version {self.current} is not among the versions")
        for version, pipe in self.versions.items():
            if pipe.version != version:
                raise ValueError(f"pipeline version {pipe.version} given as version {version}")
        object.__setattr__(self, "merged", _merge(self.latest, self.versions.values()))

    @classmethod
    def load(cls, docs: Mapping[int, Mapping[str, Any]], current: int) -> Pipelines:
        return cls({v: parse(doc) for v, doc in sorted(docs.items())}, current)

    @classmethod
    def serving(cls, pipeline: Pipeline) -> Pipelines:
        """The registry of a bridge given only ``pipeline``: the stored versions, with it as
        the current one, when it is one of them; otherwise ``pipeline`` alone."""
        stored = default_pipelines()
        if stored.versions.get(pipeline.version) == pipeline:
            return stored.with_current(pipeline.version)
        return cls({pipeline.version: pipeline}, pipeline.version)

    @property
    def latest(self) -> Pipeline:
        """The current pipeline (what a new course is pinned to)."""
        return self.versions[self.current]

    def with_current(self, version: int) -> Pipelines:
        """The same versions with ``version`` current (a deployment of an earlier one)."""
        return self if version == self.current else Pipelines(self.versions, version)

    def get(self, version: int, digest: str | None = None) -> Pipeline:
        """Pipeline ``version``; ``UnknownPipeline`` if none is stored, or if ``digest`` is
        given and is not the stored definition's."""
        found = self.versions.get(version)
        if found is None:
            raise UnknownPipeline(version, known=tuple(self.versions))
        if digest is not None and digest != found.digest:
            raise UnknownPipeline(version, digest, found.digest)
        return found

    def of(self, state: CourseState) -> Pipeline:
        """The pipeline ``state``'s course is pinned to (``UnknownPipeline`` if not stored)."""
        return self.pinned(state.pipeline)

    def pinned(self, pin: Mapping[str, Any] | None) -> Pipeline:
        """The pipeline of a pin ({version, digest}, as in a snapshot's ``pipeline``; None for
        a course requested before pinning)."""
        if pin is None:
            return self.get(UNPINNED_PIPELINE_VERSION)
        return self.get(pin["version"], pin["digest"])


def _merge(current: Pipeline, pipelines: Iterable[Pipeline]) -> Pipeline:
    queues = dict(current.queues)
    steps = dict(current.steps)
    order = list(current.order)
    for pipe in sorted(pipelines, key=lambda p: -p.version):  # the newest definition first
        for name, queue in pipe.queues.items():
            queues.setdefault(name, queue)
        for name in pipe.order:
            if name not in steps:
                steps[name] = pipe.steps[name]
                order.append(name)
    return replace(current, queues=queues, steps=steps, order=tuple(order))


@cache
def default_pipelines() -> Pipelines:
    """Every definition stored in ``schemas/`` (``pipelines/N.json`` and the current
    ``pipeline.json``), loaded once."""
    return Pipelines.load(schemas.pipeline_versions(), schemas.pipeline()["version"])


def default_pipeline() -> Pipeline:
    """The pipeline of ``schemas/pipeline.json`` (the current version)."""
    return default_pipelines().latest
