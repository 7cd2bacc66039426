"""Diagrams come from the definitions: every state, transition and dependency, highlighted."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import diagrams
from bridge.cli import main
from statemachine.lifecycle import COURSE, TASK
from statemachine.pipeline import default_pipeline


@pytest.mark.parametrize("lifecycle", [COURSE, TASK], ids=lambda lc: lc.name)
def test_mermaid_state_diagram_has_every_transition(lifecycle) -> None:
    text = diagrams.mermaid(diagrams.graph(lifecycle.name))
    assert text.startswith("stateDiagram-v2")
    assert f"[*] --> {lifecycle.initial}" in text
    for src, trigger, dst in lifecycle.edges():
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{src} --> {dst}:"))
        assert trigger in line.split(": ", 1)[1].split(", ")
    for state in lifecycle.terminal:
        assert f"{state} --> [*]" in text


def test_mermaid_flowchart_has_every_dependency() -> None:
    pipe = default_pipeline()
    text = diagrams.mermaid(diagrams.graph("pipeline"))
    assert text.startswith("flowchart LR")
    for name, step in pipe.steps.items():
        for dep in step.after:
            assert f"{dep} --> {name}" in text


def test_mermaid_highlight_uses_class_definitions() -> None:
    text = diagrams.mermaid(diagrams.graph("course"), {"running": "running"})
    assert "classDef st_running" in text
    assert "class running st_running" in text


@pytest.mark.parametrize("name", diagrams.NAMES)
def test_svg_draws_each_node_once_without_overlaps(name: str) -> None:
    g = diagrams.graph(name)
    svg = diagrams.svg(g)
    nodes = re.findall(r'<g class="node[^"]*" data-node="([^"]+)">', svg)
    assert sorted(nodes) == sorted(g.nodes)
    boxes = [
        tuple(float(v) for v in m)
        for m in re.findall(
            r'data-node="[^"]+"><rect x="([\d.-]+)" y="([\d.-]+)" width="([\d.]+)" '
            r'height="([\d.]+)"',
            svg,
        )
    ]
    assert len(boxes) == len(g.nodes)
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in itertools.combinations(boxes, 2):
        apart = x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
        assert apart, "two nodes overlap"
    edges = re.findall(r'<g class="edge" data-edge="([^"]+)"', svg)
    assert len(edges) == len(g.edges)


def test_svg_highlights_the_given_states_only() -> None:
    svg = diagrams.svg(diagrams.graph("course"), {"completed": "completed"})
    assert '<g class="node terminal st-completed hl" data-node="completed">' in svg
    assert svg.count(' hl"') == 1


def test_svg_badges() -> None:
    svg = diagrams.svg(diagrams.graph("task"), {"succeeded": "succeeded"}, {"succeeded": "11"})
    assert '<text class="badge"' in svg and ">11</text>" in svg


def test_png_renders_when_cairosvg_is_there() -> None:
    pytest.importorskip("cairosvg", reason="CairoSVG is not installed")
    data = diagrams.render(["pipeline"], "png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


def test_cli_prints_mermaid_by_default() -> None:
    result = CliRunner().invoke(main, ["diagram"])
    assert result.exit_code == 0, result.output
    assert result.output.count("stateDiagram-v2") == 2
    assert "flowchart LR" in result.output


def test_cli_writes_a_highlighted_svg(tmp_path: Path) -> None:
    out = tmp_path / "course.svg"
    args = ["diagram", "--which", "course", "--format", "svg", "--highlight", "paused", "--out"]
    result = CliRunner().invoke(main, [*args, str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<svg") and 'st-paused hl" data-node="paused"' in text


def test_cli_refuses_an_unknown_state_and_png_to_a_terminal() -> None:
    result = CliRunner().invoke(main, ["diagram", "--highlight", "nowhere"])
    assert result.exit_code != 0 and "nowhere" in result.output
    result = CliRunner().invoke(main, ["diagram", "--format", "png"])
    assert result.exit_code != 0 and "--out" in result.output
