"""The core is pure: no I/O, clock, randomness or environment, checked on its source."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "statemachine"
ALLOWED_THIRD_PARTY = {"transitions", "schemas", "statemachine"}
BANNED_MODULES = {
    "os",
    "time",
    "random",
    "socket",
    "subprocess",
    "uuid",
    "secrets",
    "pathlib",
    "io",
    "sqlite3",
    "shutil",
    "tempfile",
    "urllib",
    "http",
    "requests",
    "logging",
    "threading",
    "asyncio",
    "importlib",
}
BANNED_CALLS = {"open", "input", "print", "exec", "eval", "__import__"}
BANNED_ATTRS = {"now", "utcnow", "today", "environ", "getenv", "time_ns", "perf_counter"}


def core_files() -> list[Path]:
    # The store adapters are I/O by design and live apart, in statemachine/store/ (appending.py,
    # which they share, is pure and is checked).
    files = [p for p in CORE.rglob("*.py") if "store" not in p.relative_to(CORE).parts]
    return [*files, CORE / "store" / "appending.py"]


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                top = name.split(".")[0]
                if top in BANNED_MODULES:
                    found.append(f"{path.name}:{node.lineno} imports {name}")
                elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
                    found.append(f"{path.name}:{node.lineno} imports third-party {name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in BANNED_CALLS:
                found.append(f"{path.name}:{node.lineno} calls {node.func.id}()")
        elif isinstance(node, ast.Attribute) and node.attr in BANNED_ATTRS:
            found.append(f"{path.name}:{node.lineno} uses .{node.attr}")
    return found


def test_core_modules_do_no_io_clock_random_or_environment():
    problems = [v for path in core_files() for v in violations(path)]
    assert problems == []


def test_the_checker_catches_what_it_bans(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nimport time\nfrom datetime import datetime\n"
        "x = datetime.now()\ny = open('f')\nimport orjson\n"
    )
    found = violations(bad)
    assert any("imports os" in f for f in found)
    assert any("imports time" in f for f in found)
    assert any(".now" in f for f in found)
    assert any("calls open()" in f for f in found)
    assert any("third-party orjson" in f for f in found)


def test_the_core_never_loads_the_pipeline_itself():
    """``decide`` and the reducer are given the pipeline; only ``pipeline.py`` reads the file
    (``default_pipeline``, for the composition roots), so a course can run on another one."""
    users = [
        f"{path.name}:{node.lineno}"
        for path in core_files()
        if path.name != "pipeline.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Name | ast.alias)
        and (getattr(node, "id", None) or getattr(node, "name", None)) == "default_pipeline"
    ]
    assert users == []
