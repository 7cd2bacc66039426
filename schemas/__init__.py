"""The JSON Schemas and the pipeline definition, loaded from package data and validated."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

_rs: Any
try:  # Rust validator, ~100x faster: the fast path for documents it finds valid (see validate)
    import jsonschema_rs as _rs
except ImportError:  # pragma: no cover - a dependency; without it every check is jsonschema's
    _rs = None

__all__ = [
    "SchemaError",
    "deployed_pipeline",
    "load",
    "pipeline",
    "pipeline_versions",
    "schema_names",
    "validate",
    "validator",
]


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
            if child.is_dir() and not child.name.startswith("__") and child.name != "pipelines":
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


@cache
def _fast(name: str) -> Any:
    """A compiled ``jsonschema_rs`` validator for schema ``name``, or None (no library, or a
    schema it cannot compile on its own, such as one with references to other files)."""
    if _rs is None:
        return None
    validator(name)  # the schema itself is checked by jsonschema first
    try:
        return _rs.Draft202012Validator(load(name), validate_formats=False, offline=True)
    except Exception:
        return None


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """Whether ``value`` is made only of JSON's own Python types (dicts with str keys, lists,
    str, int, float, bool, None), where both validators see the same document."""
    t = type(value)
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if t is list:
        return all(_plain(v) for v in value)
    return t in _SCALARS


def validate(name: str, document: Any) -> None:
    """Raise ``SchemaError`` naming every field of ``document`` that breaks schema ``name``.

    ``jsonschema`` has the last word: the Rust validator only lets a plain JSON document
    through sooner when it finds it valid (it is stricter, never looser, on what ours hold:
    its regexes are ASCII-only and ``$`` does not match before a final newline); anything it
    refuses or cannot read is checked, and its errors described, by ``jsonschema``.
    """
    fast = _fast(name)
    if fast is not None and _plain(document):
        try:
            if fast.is_valid(document):
                return
        except Exception:  # e.g. a number out of its range: let jsonschema decide
            pass
    errors = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise SchemaError(name, [_describe(e) for e in errors[:10]])


def _describe(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{path}: {error.message}"


def known_fields(name: str, document: Any) -> Any:
    """``document`` without the object members schema ``name`` does not declare, at every level
    whose schema lists ``properties`` (a consumer's forward compatibility: a newer publisher's
    extra field is ignored, and nothing of it is recorded). Other values come back as given."""
    return _known(load(name), document)


def _known(schema: Mapping[str, Any], value: Any) -> Any:
    properties = schema.get("properties")
    if not isinstance(value, dict) or not isinstance(properties, Mapping):
        return value
    return {k: _known(properties[k], v) for k, v in value.items() if k in properties}


@cache
def pipeline() -> dict[str, Any]:
    """``pipeline.json``, checked against its schema."""
    doc = load("pipeline")
    validate("pipeline.schema", doc)
    return doc


@cache
def pipeline_versions() -> dict[int, dict[str, Any]]:
    """Every stored pipeline definition by its version, each checked against its schema: the
    earlier ones (``pipelines/<version>.json``, never edited once released) and the current
    one (``pipeline.json``). A file whose ``version`` is not its name is a ``ValueError``."""
    found: dict[int, dict[str, Any]] = {}
    folder = _root().joinpath("pipelines")
    for child in sorted(folder.iterdir(), key=lambda c: c.name) if folder.is_dir() else ():
        if not child.name.endswith(".json"):
            continue
        doc = json.loads(child.read_text(encoding="utf-8"))
        validate("pipeline.schema", doc)
        if str(doc["version"]) != child.name[: -len(".json")]:
            raise ValueError(f"pipelines/{child.name} holds version {doc['version']}")
        found[doc["version"]] = doc
    current = pipeline()
    if current["version"] in found:
        raise ValueError(
            f"pipeline.json and pipelines/ both hold version {current['version']}: pipelines/"
            " keeps the earlier versions only"
        )
    found[current["version"]] = current
    return dict(sorted(found.items()))


def deployed_pipeline() -> dict[str, Any]:
    """``pipeline.json`` with the queues and steps of every stored version (the newest
    definition where several name one): what Terraform deploys (terraform/modules/queues and
    services merge them alike), as a course on an earlier version still uses its own."""
    out = dict(pipeline())
    queues: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    for doc in pipeline_versions().values():  # oldest first: a newer definition replaces it
        queues.update(doc["queues"])
        steps.update(doc["steps"])
    out["queues"], out["steps"] = queues, steps
    return out
