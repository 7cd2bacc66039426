"""Diagrams of the course and task lifecycles and the step DAG, drawn from their definitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from bridge.diagrams import layout
from statemachine.lifecycle import COURSE, TASK, Lifecycle
from statemachine.pipeline import Pipeline, default_pipeline

FORMATS = ("mermaid", "svg", "png")
NAMES = ("course", "task", "pipeline")

# Status palette shared by the diagrams and the dashboard: (stroke, fill).
PALETTE: Mapping[str, tuple[str, str]] = {
    "requested": ("#475569", "#e2e8f0"),
    "new": ("#475569", "#e2e8f0"),
    "pending": ("#64748b", "#f1f5f9"),
    "waiting": ("#94a3b8", "#f8fafc"),
    "scheduled": ("#0891b2", "#cffafe"),
    "running": ("#d97706", "#fef3c7"),
    "retrying": ("#c026d3", "#fae8ff"),
    "paused": ("#7c3aed", "#ede9fe"),
    "succeeded": ("#16a34a", "#dcfce7"),
    "completed": ("#16a34a", "#dcfce7"),
    "failed": ("#dc2626", "#fee2e2"),
    "exhausted": ("#dc2626", "#fee2e2"),
    "cancelled": ("#334155", "#cbd5e1"),
    "moot": ("#334155", "#cbd5e1"),
}


@dataclass(frozen=True, slots=True)
class Graph:
    """What a diagram shows: nodes (with an optional second line), labelled edges."""

    name: str
    title: str
    kind: str  # "state" (a lifecycle) or "flow" (the step DAG)
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str, str], ...]  # (source, dest, label)
    notes: Mapping[str, str]
    initial: str | None = None
    terminal: frozenset[str] = frozenset()


def lifecycle_graph(lifecycle: Lifecycle, title: str) -> Graph:
    """The lifecycle's states and transitions; triggers between the same pair share an edge."""
    labels: dict[tuple[str, str], list[str]] = {}
    for src, trigger, dst in lifecycle.edges():
        labels.setdefault((src, dst), []).append(trigger)
    edges = tuple((s, d, ", ".join(t)) for (s, d), t in labels.items())
    notes = {s: "terminal" for s in lifecycle.terminal}
    return Graph(
        lifecycle.name,
        title,
        "state",
        lifecycle.states,
        edges,
        notes,
        lifecycle.initial,
        lifecycle.terminal,
    )


def pipeline_graph(pipeline: Pipeline) -> Graph:
    """Steps in topological order, an edge per dependency; the queue under each step."""
    edges = tuple((dep, name) for name in pipeline.order for dep in pipeline.steps[name].after)
    notes = {}
    for name in pipeline.order:
        step = pipeline.steps[name]
        fan = f" · fan-out by {step.fan_out.count_field}" if step.fan_out else ""
        notes[name] = step.queue.removesuffix("-queue") + fan
    return Graph(
        "pipeline",
        "Step DAG (schemas/pipeline.json)",
        "flow",
        pipeline.order,
        tuple((s, d, "") for s, d in edges),
        notes,
    )


def graph(name: str) -> Graph:
    if name == "course":
        return lifecycle_graph(COURSE, "Course lifecycle")
    if name == "task":
        return lifecycle_graph(TASK, "Task lifecycle")
    if name == "pipeline":
        return pipeline_graph(default_pipeline())
    raise ValueError(f"no diagram named {name!r}; one of {', '.join(NAMES)}")


# -- mermaid ---------------------------------------------------------------------------------


def mermaid(g: Graph, highlight: Mapping[str, str] | None = None) -> str:
    """Mermaid text: ``stateDiagram-v2`` for a lifecycle, ``flowchart LR`` for the DAG."""
    lines = _mermaid_state(g) if g.kind == "state" else _mermaid_flow(g)
    marks = highlight or {}
    for status in sorted(set(marks.values())):
        stroke, fill = PALETTE.get(status, PALETTE["running"])
        lines.append(f"    classDef st_{status} fill:{fill},stroke:{stroke},stroke-width:3px")
    for node, status in marks.items():
        if node in g.nodes:
            lines.append(f"    class {node} st_{status}")
    return "\n".join(lines) + "\n"


def _mermaid_state(g: Graph) -> list[str]:
    lines = ["stateDiagram-v2", "    direction LR"]
    if g.initial:
        lines.append(f"    [*] --> {g.initial}")
    for src, dst, label in g.edges:
        lines.append(f"    {src} --> {dst}: {label}" if label else f"    {src} --> {dst}")
    lines.extend(f"    {s} --> [*]" for s in g.nodes if s in g.terminal)
    return lines


def _mermaid_flow(g: Graph) -> list[str]:
    lines = ["flowchart LR"]
    for node in g.nodes:
        note = g.notes.get(node, "")
        text = f"{node}<br/><small>{note}</small>" if note else node
        lines.append(f'    {node}["{text}"]')
    lines.extend(f"    {src} --> {dst}" for src, dst, _ in g.edges)
    return lines


# -- svg -------------------------------------------------------------------------------------

FONT = "DejaVu Sans, Verdana, Segoe UI, sans-serif"

_STYLE = """
.cg-diagram { font-family: %(font)s; }
.cg-diagram .title { font-size: 15px; font-weight: 600; fill: #0f172a; }
.cg-diagram .node rect { fill: #ffffff; stroke: #94a3b8; stroke-width: 1.5; }
.cg-diagram .node .label { font-size: 13px; fill: #0f172a; }
.cg-diagram .node .note { font-size: 10.5px; fill: #64748b; }
.cg-diagram .node .badge { font-size: 11px; font-weight: 700; fill: #ffffff; }
.cg-diagram .node .badge-bg { stroke: none; }
.cg-diagram .node.terminal rect { stroke-width: 2.5; }
.cg-diagram .node.hl .label { font-weight: 700; }
.cg-diagram .edge path { fill: none; stroke: #64748b; stroke-width: 1.3; }
.cg-diagram .edge text { font-size: 11px; fill: #334155; }
.cg-diagram .edge .label-bg { fill: #ffffff; opacity: 0.85; }
.cg-diagram .start { fill: #0f172a; }
%(palette)s
"""


def _palette_css() -> str:
    rules = []
    for status, (stroke, fill) in PALETTE.items():
        rules.append(
            f".cg-diagram .node.st-{status} rect {{ fill: {fill}; stroke: {stroke}; "
            f"stroke-width: 3; }}\n.cg-diagram .node.st-{status} .badge-bg {{ fill: {stroke}; }}"
        )
    return "\n".join(rules)


def style_css() -> str:
    """The diagrams' stylesheet (embedded in each SVG; the dashboard reuses it)."""
    return _STYLE % {"font": FONT, "palette": _palette_css()}


def svg(
    g: Graph,
    highlight: Mapping[str, str] | None = None,
    badges: Mapping[str, str] | None = None,
    *,
    standalone: bool = True,
) -> str:
    """An SVG of ``g`` with a layered left-to-right layout.

    ``highlight`` maps a node to a status (its colour); ``badges`` put a small count on nodes.
    Nodes carry ``data-node`` and the classes ``node``, ``st-<status>``, ``hl`` so a page can
    restyle them live.
    """
    marks, counts = highlight or {}, badges or {}
    sizes = {n: _node_size(n, g.notes.get(n, "")) for n in g.nodes}
    drawn = layout.layered(
        g.nodes,
        [(s, d) for s, d, _ in g.edges],
        sizes,
        first=g.initial,
        gap_x=130.0 if g.kind == "state" else 90.0,
    )
    top = 34
    width = drawn.width + 40
    height = drawn.height + top + 20
    prefix = f"cg-{g.name}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cg-diagram" data-diagram="{g.name}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'role="img" aria-label="{escape(g.title)}">',
        f"<title>{escape(g.title)}</title>",
        f"<style>{style_css()}</style>" if standalone else "",
        "<defs>"
        f'<marker id="{prefix}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#64748b"/></marker></defs>',
        '<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>',
        f'<text class="title" x="20" y="22">{escape(g.title)}</text>',
        f'<g transform="translate(20,{top})">',
    ]
    labels = {(s, d): label for s, d, label in g.edges}
    for route in drawn.routes:
        parts.append(_edge_svg(route, labels.get((route.source, route.dest), ""), prefix))
    if g.initial:
        box = drawn.boxes[g.initial]
        parts.append(f'<circle class="start" cx="{box.x - 14:.1f}" cy="{box.cy:.1f}" r="5"/>')
    for node in g.nodes:
        parts.append(_node_svg(g, node, drawn.boxes[node], marks.get(node), counts.get(node)))
    parts.append("</g></svg>")
    return "\n".join(p for p in parts if p)


def _node_size(name: str, note: str) -> tuple[float, float]:
    width = max(_text_width(name, 13), _text_width(note, 10.5)) + 28
    return max(width, 96), 44 if note else 32


def _text_width(text: str, size: float) -> float:
    return len(text) * size * 0.62


def _node_svg(g: Graph, node: str, box: layout.Box, status: str | None, badge: str | None) -> str:
    classes = ["node"]
    if node in g.terminal:
        classes.append("terminal")
    if status:
        classes += [f"st-{status}", "hl"]
    note = g.notes.get(node, "") if g.kind == "flow" else ""
    label_y = box.cy - 4 if note else box.cy + 4.5
    out = [
        f'<g class="{" ".join(classes)}" data-node="{escape(node)}">',
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
        f'rx="{16 if g.kind == "state" else 6}"/>',
        f'<text class="label" x="{box.cx:.1f}" y="{label_y:.1f}" '
        f'text-anchor="middle">{escape(node)}</text>',
    ]
    if note:
        out.append(
            f'<text class="note" x="{box.cx:.1f}" y="{box.cy + 12:.1f}" '
            f'text-anchor="middle">{escape(note)}</text>'
        )
    if badge:
        bw = _text_width(badge, 11) + 12
        bx, by = box.x + box.w - bw / 2 - 2, box.y - 2
        out.append(
            f'<rect class="badge-bg" x="{bx:.1f}" y="{by - 8:.1f}" width="{bw:.1f}" '
            f'height="16" rx="8"/><text class="badge" x="{bx + bw / 2:.1f}" y="{by + 4:.1f}" '
            f'text-anchor="middle">{escape(badge)}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _edge_svg(route: layout.Route, label: str, prefix: str) -> str:
    marker = f'marker-end="url(#{prefix}-arrow)"'
    out = [
        f'<g class="edge" data-edge="{escape(route.source)}-{escape(route.dest)}">'
        f'<path d="{route.path}" {marker}/>'
    ]
    if label:
        lx, ly = route.label_at
        w = _text_width(label, 11) + 6
        out.append(
            f'<rect class="label-bg" x="{lx - w / 2:.1f}" y="{ly - 9:.1f}" width="{w:.1f}" '
            f'height="13" rx="3"/><text x="{lx:.1f}" y="{ly + 1:.1f}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    out.append("</g>")
    return "".join(out)


# -- png -------------------------------------------------------------------------------------


def png(svg_text: str, scale: float = 2.0) -> bytes:
    """Render an SVG to PNG with CairoSVG (``pip install cairosvg``; needs libcairo2)."""
    try:
        import cairosvg
    except (ImportError, OSError) as err:
        raise RuntimeError(f"PNG output needs CairoSVG and libcairo2: {err}") from None
    data: bytes = cairosvg.svg2png(bytestring=svg_text.encode("utf-8"), scale=scale)
    return data


def render(names: Sequence[str], fmt: str, highlight: Mapping[str, str] | None = None) -> bytes:
    """Every diagram in ``names`` in ``fmt``: mermaid texts joined, or one stacked SVG/PNG."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    graphs = [graph(n) for n in names]
    marks = highlight or {}
    if fmt == "mermaid":
        blocks = [f"%% {g.title}\n{mermaid(g, _marks_for(g, marks))}" for g in graphs]
        return "\n".join(blocks).encode()
    drawn = [svg(g, _marks_for(g, marks)) for g in graphs]
    text = drawn[0] if len(drawn) == 1 else stack(drawn)
    return text.encode() if fmt == "svg" else png(text)


def _marks_for(g: Graph, marks: Mapping[str, str]) -> dict[str, str]:
    """Highlight requests that name a node of ``g``; a lifecycle state is coloured as itself."""
    return {n: s if s in PALETTE else "running" for n, s in marks.items() if n in g.nodes}


def stack(svgs: Sequence[str]) -> str:
    """Several standalone SVGs one above the other in one SVG."""
    import re

    sizes = []
    for text in svgs:
        m = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', text)
        assert m, "an SVG of ours always has a viewBox"
        sizes.append((float(m.group(1)), float(m.group(2))))
    width = max(w for w, _ in sizes)
    height = sum(h for _, h in sizes)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}">'
    ]
    y = 0.0
    for text, (_, h) in zip(svgs, sizes, strict=True):
        inner = text.replace('<svg xmlns="http://www.w3.org/2000/svg" ', f'<svg y="{y:.0f}" ', 1)
        parts.append(inner)
        y += h
    parts.append("</svg>")
    return "\n".join(parts)
