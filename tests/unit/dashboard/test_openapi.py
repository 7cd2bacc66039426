"""The OpenAPI document is valid 3.1 and documents every route of ``coursegen serve``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.settings import Settings
from bridge.web.dashboard.stack import local_stack
from bridge.web.openapi import document


def _routes(data: Path) -> set[tuple[str, str]]:
    stack = local_stack(data, settings=Settings.from_env({"COURSEGEN_STORE": "memory"}), workers=0)
    try:
        out = set()
        for rule in stack.app.url_map.iter_rules():
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                out.add((method.lower(), path))
        return out
    finally:
        stack.close()


def test_document_is_valid_openapi_31() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validator.validate(doc)


def test_every_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    documented = {(method, path) for path, ops in document()["paths"].items() for method in ops}
    assert _routes(tmp_path) == documented


def test_every_post_documents_413_and_problem_details() -> None:
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            codes = op["responses"]
            if method == "post":
                assert "413" in codes, path
            for code, answer in codes.items():
                if int(code) >= 400:
                    assert "application/problem+json" in answer["content"], (path, code)
