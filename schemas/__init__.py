"""The JSON Schemas and the pipeline definition, loaded from package data and validated."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

__all__ = ["SchemaError", "load", "pipeline", "schema_names", "validate", "validator"]


class SchemaError(ValueError):
    """A document does not match its schema; ``errors`` lists each problem with its path."""

    def __init__(self, schema: str, errors: list[str]) -> None:
        self.schema = schema
        self.errors = errors
        super().__init__(f"{schema}: " + "; ".join(errors))


def _root() -> Any:
    return resources.files(__name__)


@cache
def schema_names() -> tuple[str, ...]:
    """Every schema in the package, by its path relative to ``schemas/`` without ``.json``."""
    names: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir() and not child.name.startswith("__"):
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".json") and child.name != "pipeline.json":
                names.append(prefix + child.name[: -len(".json")])

    walk(_root(), "")
    return tuple(names)


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed JSON document ``schemas/<name>.json``."""
    path = _root().joinpath(*f"{name}.json".split("/"))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"no schema named {name!r}") from None
    doc: dict[str, Any] = json.loads(text)
    return doc


@cache
def _registry() -> Registry:
    pairs = []
    for name in schema_names():
        doc = load(name)
        if "$id" in doc:
            pairs.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(pairs)


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def validate(name: str, document: Any) -> None:
    """Raise ``SchemaError`` naming every field of ``document`` that breaks schema ``name``."""
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise SchemaError(name, [_describe(e) for e in errors[:10]])


def _describe(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{path}: {error.message}"


@cache
def pipeline() -> dict[str, Any]:
    """``pipeline.json``, checked against its schema."""
    doc = load("pipeline")
    validate("pipeline.schema", doc)
    return doc
