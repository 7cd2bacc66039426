"""Who may import whom: the rooms of docs/design.md, checked on every module's imports."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# The bridge proper: what the deployed bridge function runs.
BRIDGE_PROPER = (
    "bridge.core",
    "bridge.reconcile",
    "bridge.wire",
    "bridge.pubsub",
    "bridge.settings",
    "bridge.tenancy",
    "bridge.partition",
    "bridge.dispatch",
)
# Concrete store adapters: only composition roots (runtime, cli, tooling) pick one.
ADAPTERS = (
    "statemachine.store.sqlite",
    "statemachine.store.firestore",
    "statemachine.store.memory",
    "statemachine.store.wal_sync",
)
CORE = ("statemachine", "schemas")
PUBLIC_HANDLERS = (
    "handlers.auth",
    "handlers.body",
    "handlers.registry",
    "handlers.media.fetch",
    "handlers.media.ssrf",
)

# room -> (allowed import prefixes, forbidden prefixes that win over allowed ones)
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "statemachine": (CORE, ("statemachine.store.firestore",)),
    "handlers": (("handlers", *CORE), ADAPTERS),
    "bridge.diagrams": (("bridge.diagrams", "statemachine.lifecycle", "statemachine.pipeline"), ()),
    "bridge.ops": (
        (
            "bridge.ops",
            "bridge.core",
            "bridge.wire",
            "bridge.settings",
            "handlers.artifacts",
            *CORE,
        ),
        (*ADAPTERS, "statemachine.store.firestore"),
    ),
    "bridge.web": (
        (
            "bridge.web",
            "bridge.ops",
            "bridge.runtime",
            "bridge.diagrams",
            *BRIDGE_PROPER,
            *PUBLIC_HANDLERS,
            *CORE,
        ),
        ADAPTERS,
    ),
    "bridge.runtime": (("bridge.runtime", *BRIDGE_PROPER, "handlers", *CORE), ()),
    **{room: ((*BRIDGE_PROPER, "handlers", *CORE), ADAPTERS) for room in BRIDGE_PROPER},
    # Leaves: the command line and laptop tooling may import anything below them.
    "bridge.cli": (("bridge", "handlers", *CORE), ()),
    "bridge.tooling": (("bridge", "handlers", *CORE), ()),
}
OURS = ("statemachine", "schemas", "handlers", "bridge", "main")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str) -> str | None:
    matches = [room for room in RULES if module == room or module.startswith(room + ".")]
    return max(matches, key=len) if matches else None


def starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    package = module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            for alias in node.names:
                # "from bridge import diagrams" imports the module bridge.diagrams
                yield node.lineno, f"{base}.{alias.name}" if base in OURS or "." in base else base


def violations() -> list[str]:
    found = []
    for top in ("statemachine", "handlers", "bridge"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = module_name(path)
            if module == "bridge":
                continue  # the package's own docstring, nothing else
            room = room_of(module)
            if room is None:
                found.append(f"{module}: in no room of the layer rules")
                continue
            allowed, forbidden = RULES[room]
            for line, name in imports(path):
                if not starts(name, OURS) or starts(name, (room,)):
                    continue
                if starts(name, forbidden) or not starts(name, allowed):
                    found.append(f"{path.relative_to(ROOT)}:{line} ({room}) imports {name}")
    return found


def test_every_module_imports_only_what_its_room_allows() -> None:
    assert violations() == []


def test_the_rules_catch_a_forbidden_import(tmp_path: Path) -> None:
    """The check is not vacuous: an ops module reaching for a concrete adapter is named."""
    allowed, forbidden = RULES["bridge.ops"]
    assert starts("statemachine.store.sqlite", forbidden)
    assert not starts("bridge.runtime.embedded", allowed)
    assert starts("bridge.core", allowed)
    assert room_of("bridge.web.dashboard.app") == "bridge.web"
    assert room_of("bridge.dispatch.local") == "bridge.dispatch"
    assert RULES[room_of("handlers.steps.finalize") or ""][0] == ("handlers", *CORE)


def test_handlers_never_import_the_bridge() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "handlers").rglob("*.py"))
        for line, name in imports(path)
        if starts(name, ("bridge", "main"))
    ]
    assert bad == []
