"""A small layered (Sugiyama-style) left-to-right graph layout for the diagrams, in pure Python."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DUMMY_H = 16.0
LOOP_H = 26.0


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True, slots=True)
class Route:
    source: str
    dest: str
    path: str  # SVG path data, drawn from source to dest
    label_at: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Drawing:
    boxes: Mapping[str, Box]
    routes: tuple[Route, ...]
    width: float
    height: float


def layered(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    sizes: Mapping[str, tuple[float, float]],
    *,
    first: str | None = None,
    gap_x: float = 110.0,
    gap_y: float = 22.0,
) -> Drawing:
    """Lay ``nodes`` out in columns: cycles broken by DFS, longest-path layers, dummy nodes
    on long edges, barycentre ordering, least-squares vertical placement."""
    loops = {s for s, d in edges if s == d}
    back = _back_edges(nodes, edges, first)
    dag = [((d, s) if (s, d) in back else (s, d)) for s, d in edges if s != d]
    layer = _layers(nodes, dag)
    chains, layers = _chains(nodes, dag, layer)
    twins = {pair for pair in dag if dag.count(pair) > 1}
    heights = {n: sizes[n][1] + (LOOP_H if n in loops else 0.0) for n in nodes}
    _order(layers, chains)
    cols = _columns(layers, sizes, gap_x)
    ys = _place(layers, chains, heights, gap_y)
    top = min(ys[n] - heights.get(n, DUMMY_H) / 2 for col in layers for n in col)
    boxes = {}
    for i, col in enumerate(layers):
        left, width = cols[i]
        for n in col:
            if n in sizes:
                w, h = sizes[n]
                y = ys[n] - top - heights[n] / 2 + (LOOP_H if n in loops else 0.0)
                boxes[n] = Box(left + (width - w) / 2, y, w, h)
    centre = {n: ys[n] - top for n in ys}
    real = [(s, d) for s, d in edges if s != d]
    routes = [
        _route(
            s,
            d,
            chains[i],
            (s, d) in back,
            (d, s) in twins or (s, d) in twins,
            boxes,
            centre,
            cols,
            layer,
        )
        for i, (s, d) in enumerate(real)
    ]
    routes += [_loop(n, boxes[n]) for n in nodes if n in loops]
    height = max(ys[n] - top + heights.get(n, DUMMY_H) / 2 for n in ys)
    width = cols[-1][0] + cols[-1][1] if cols else 0.0
    return Drawing(boxes, tuple(routes), width, height)


def _back_edges(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]], first: str | None
) -> set[tuple[str, str]]:
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        if s != d:
            out[s].append(d)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()

    def visit(n: str) -> None:
        state[n] = 1
        for m in out[n]:
            if state.get(m) == 1:
                back.add((n, m))
            elif m not in state:
                visit(m)
        state[n] = 2

    for n in [first, *nodes] if first else nodes:
        if n is not None and n not in state:
            visit(n)
    return back


def _layers(nodes: Sequence[str], dag: Sequence[tuple[str, str]]) -> dict[str, int]:
    layer = dict.fromkeys(nodes, 0)
    for _ in nodes:  # longest path: relax |V| times (graphs here are tiny)
        changed = False
        for s, d in dag:
            if layer[d] < layer[s] + 1:
                layer[d] = layer[s] + 1
                changed = True
        if not changed:
            break
    return layer


def _chains(
    nodes: Sequence[str], dag: Sequence[tuple[str, str]], layer: Mapping[str, int]
) -> tuple[list[list[str]], list[list[str]]]:
    """Each DAG edge as a chain of nodes one layer apart (dummies ``~i~k`` in between)."""
    depth = max(layer.values(), default=0) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for n in nodes:
        layers[layer[n]].append(n)
    chains: list[list[str]] = []
    for i, (s, d) in enumerate(dag):
        chain = [s]
        for k in range(layer[s] + 1, layer[d]):
            dummy = f"~{i}~{k}"
            layers[k].append(dummy)
            chain.append(dummy)
        chain.append(d)
        chains.append(chain)
    return chains, layers


def _order(layers: list[list[str]], chains: Sequence[list[str]]) -> None:
    """Barycentre sweeps, keeping the ordering with the fewest crossings."""
    pairs = {(c[i], c[i + 1]) for c in chains for i in range(len(c) - 1)}
    links = [(a, b) for a, b in pairs if _index(layers, a)[0] + 1 == _index(layers, b)[0]]
    best = [list(col) for col in layers]
    best_cross = _crossings(layers, links)
    for sweep in range(8):
        down = sweep % 2 == 0
        rng = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for i in rng:
            ref = {n: k for k, n in enumerate(layers[i - 1 if down else i + 1])}
            bary = {}
            for k, n in enumerate(layers[i]):
                near = (
                    [ref[a] for a, b in links if b == n and a in ref]
                    if down
                    else [ref[b] for a, b in links if a == n and b in ref]
                )
                bary[n] = sum(near) / len(near) if near else float(k)
            layers[i].sort(key=lambda n: bary[n])
        cross = _crossings(layers, links)
        if cross < best_cross:
            best, best_cross = [list(col) for col in layers], cross
    layers[:] = best


def _index(layers: Sequence[Sequence[str]], n: str) -> tuple[int, int]:
    for i, col in enumerate(layers):
        if n in col:
            return i, col.index(n)
    raise KeyError(n)


def _crossings(layers: Sequence[Sequence[str]], links: Sequence[tuple[str, str]]) -> int:
    pos = {n: (i, k) for i, col in enumerate(layers) for k, n in enumerate(col)}
    count = 0
    for a1, b1 in links:
        for a2, b2 in links:
            if pos[a1][0] == pos[a2][0] and pos[a1][1] < pos[a2][1] and pos[b1][1] > pos[b2][1]:
                count += 1
    return count


def _columns(
    layers: Sequence[Sequence[str]], sizes: Mapping[str, tuple[float, float]], gap_x: float
) -> list[tuple[float, float]]:
    cols, x = [], 0.0
    for col in layers:
        width = max((sizes[n][0] for n in col if n in sizes), default=40.0)
        cols.append((x, width))
        x += width + gap_x
    return cols


def _place(
    layers: Sequence[Sequence[str]],
    chains: Sequence[list[str]],
    heights: Mapping[str, float],
    gap_y: float,
) -> dict[str, float]:
    """Vertical centres: start stacked, then pull each node towards its neighbours' mean."""
    nbrs: dict[str, set[str]] = {}
    for c in chains:
        for a, b in itertools.pairwise(c):
            nbrs.setdefault(a, set()).add(b)
            nbrs.setdefault(b, set()).add(a)
    ys: dict[str, float] = {}
    for col in layers:
        y = 0.0
        for n in col:
            h = heights.get(n, DUMMY_H)
            ys[n] = y + h / 2
            y += h + gap_y
    for _ in range(12):
        for col in layers:
            want = [
                sum(ys[m] for m in nbrs.get(n, ())) / len(nbrs[n]) if nbrs.get(n) else ys[n]
                for n in col
            ]
            seps = [
                (heights.get(a, DUMMY_H) + heights.get(b, DUMMY_H)) / 2 + gap_y
                for a, b in itertools.pairwise(col)
            ]
            for n, y in zip(col, _separated(want, seps), strict=True):
                ys[n] = y
    return ys


def _separated(want: Sequence[float], seps: Sequence[float]) -> list[float]:
    """Closest positions (least squares) to ``want`` keeping consecutive gaps >= ``seps``
    (pool-adjacent-violators on the shifted problem)."""
    offsets = [0.0]
    for s in seps:
        offsets.append(offsets[-1] + s)
    blocks: list[list[float]] = []  # [mean, count]
    for w, o in zip(want, offsets, strict=True):
        blocks.append([w - o, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2 = blocks.pop()
            m1, c1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    flat = [m for m, c in blocks for _ in range(int(c))]
    return [q + o for q, o in zip(flat, offsets, strict=True)]


def _route(
    s: str,
    d: str,
    chain: Sequence[str],
    reversed_: bool,
    twin: bool,
    boxes: Mapping[str, Box],
    centre: Mapping[str, float],
    cols: Sequence[tuple[float, float]],
    layer: Mapping[str, int],
) -> Route:
    """The edge through its chain, left to right, then turned round if it points back."""
    a, b = (d, s) if reversed_ else (s, d)
    shift = (7.0 if reversed_ else -7.0) if twin and len(chain) == 2 else 0.0
    points = [(boxes[a].x + boxes[a].w, boxes[a].cy + shift)]
    for k, n in enumerate(chain[1:-1], start=layer[a] + 1):
        left, width = cols[k]
        points += [(left, centre[n]), (left + width, centre[n])]
    points.append((boxes[b].x, boxes[b].cy + shift))
    if reversed_:
        points.reverse()
    path = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if abs(y1 - y0) < 0.5 or abs(x1 - x0) < 1:
            path += f" L{x1:.1f},{y1:.1f}"
        else:
            mid = (x0 + x1) / 2
            path += f" C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
    if len(points) > 2:  # on the straight run through the middle dummy
        i = 1 + 2 * (((len(points) - 2) // 2 - 1) // 2)
        label = ((points[i][0] + points[i + 1][0]) / 2, points[i][1] - 4)
    else:  # past the middle, where edges fanning out of one node have spread apart
        (x0, y0), (x1, y1) = points
        t = 0.6 if not reversed_ else 0.4
        ease = 3 * t * t - 2 * t * t * t
        label = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * ease + 1.5 * shift)
    return Route(s, d, path, label)


def _loop(n: str, box: Box) -> Route:
    x0, x1, y = box.cx - 14, box.cx + 14, box.y
    path = (
        f"M{x0:.1f},{y:.1f} C{x0 - 22:.1f},{y - 30:.1f} {x1 + 22:.1f},{y - 30:.1f} {x1:.1f},{y:.1f}"
    )
    return Route(n, n, path, (box.cx, y - 24))
