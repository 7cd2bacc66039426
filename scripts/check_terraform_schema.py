"""Check Terraform files against the google provider's schema, offline (what `validate` would).

    python scripts/check_terraform_schema.py [PATH ...] [--cache-dir DIR] [--no-download]

Every `resource`, `data` and `provider "google"` block under the paths (default: terraform/)
is checked against the schema of scripts/provider_schema.py: an unknown resource or data
source type, an unknown argument or block, a missing required argument or block, more than
one block where the schema allows one, and a literal that Terraform could not convert to the
argument's type (a number from "five", a bool from 1, a list from a string; a number or bool
where a string is wanted converts, as in Terraform). Expressions are not evaluated: they pass.
Meta-arguments (count, for_each, depends_on, provider, lifecycle, provisioner, connection) are
allowed; `dynamic "x" { content { ... } }` is checked as block x. Every google provider
constraint in `required_providers` must pin exactly the version whose schema is checked.
Resources of other providers (archive, ...) are listed as not checked.

Exit status: 0 no findings, 1 findings, 2 the schema could not be had.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.provider_schema import REPO, WHEEL, SchemaUnavailable, load_schema

UNKNOWN_TYPE = "unknown resource type"
UNKNOWN_ARGUMENT = "unknown argument"
UNKNOWN_BLOCK = "unknown block"
MISSING_REQUIRED = "missing required argument"
WRONG_TYPE = "wrong type"
TOO_MANY_BLOCKS = "too many blocks"
UNCHECKED_PROVIDER = "unchecked provider"
PROVIDER_PIN = "provider pin"

RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner"}
RESOURCE_META |= {"connection"}
DATA_META = {"count", "for_each", "depends_on", "provider", "lifecycle"}
PROVIDER_META = {"alias", "version"}
DYNAMIC_META = {"for_each", "iterator", "labels"}
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    file: str
    line: int
    address: str  # google_x.name, data.google_x.name, provider.google
    where: str  # the argument or block inside it: "retry_config.max_attempts" ("" for itself)
    kind: str
    message: str

    def __str__(self) -> str:
        inside = f" ({self.where})" if self.where else ""
        return f"{self.file}:{self.line}: {self.address}{inside}: {self.kind}: {self.message}"


@dataclass(kw_only=True, slots=True)
class Report:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # addresses checked against the schema
    unchecked: list[str] = field(default_factory=list)  # other providers' resources
    files: int = 0


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def is_block_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and item.get("__is_block__") for item in value
    )


def fields(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    return ((k, v) for k, v in body.items() if not k.startswith("__"))


# --- literals -----------------------------------------------------------------------------


def literal_kind(value: Any) -> str | None:
    """What a python-hcl2 value is as a literal, or None for an expression (it passes)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "tuple"
    if isinstance(value, dict):
        return "object"
    text = str(value)
    if "${" in text or "%{" in text or not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return None  # an interpolation, a template directive, a bare reference
    return "string"


def _type_name(wanted: Any) -> str:
    """A schema type as Terraform writes it, with an article: "a number", "a list(string)"."""

    def spelled(t: Any) -> str:
        ((kind, element),) = t.items() if isinstance(t, dict) else ((t, None),)
        return kind if element is None else f"{kind}({spelled(element)})"

    return f"a {spelled(wanted)}"


def conversion_error(value: Any, wanted: Any) -> str | None:
    """Why Terraform could not convert the literal `value` to `wanted`, or None if it can."""
    kind = literal_kind(value)
    if kind is None or kind == "null" or wanted == "any":
        return None
    shown = value if kind == "string" else repr(value)
    if isinstance(wanted, dict):
        ((collection, element),) = wanted.items()
        items = list(value) if kind == "tuple" and collection == "list" else None
        if kind == "object" and collection == "map":
            items = [v for _, v in fields(value)]
        if items is None:
            return f"needs {_type_name(wanted)}, got the {kind} literal {shown}"
        for item in items:
            if (problem := conversion_error(item, element)) is not None:
                return f"needs {_type_name(wanted)}: an element {problem}"
        return None
    if kind in ("tuple", "object"):
        return f"needs {_type_name(wanted)}, got a {kind} literal"
    text = unquote(value) if kind == "string" else None
    if wanted == "number" and not (
        kind == "number" or (text is not None and _NUMBER.fullmatch(text))
    ):
        return f"needs {_type_name(wanted)}, got the {kind} literal {shown}"
    if wanted == "bool" and not (kind == "bool" or text in ("true", "false")):
        return f"needs {_type_name(wanted)}, got the {kind} literal {shown}"
    return None


# --- blocks -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Where:
    """Where a block is: its file, its address and its text (to point at a line inside it)."""

    file: str
    address: str
    text: str = ""
    start: int = 0  # offset of the block's first line in text

    def finding(self, where: str, kind: str, message: str) -> Finding:
        return Finding(
            file=self.file,
            line=self.line_of(where),
            address=self.address,
            where=where,
            kind=kind,
            message=message,
        )

    def line_of(self, where: str) -> int:
        """The line of the innermost part of `where` written in the block (fmt'd layout)."""
        end = self.text.find("\n}", self.start)
        end = len(self.text) if end < 0 else end
        at = self.start
        for part in where.split(".") if where else ():
            pattern = rf'^[ \t]*(?:{re.escape(part)}\b|dynamic\s+"{re.escape(part)}")'
            match = re.compile(pattern, re.MULTILINE).search(self.text, at, end)
            if match is None:
                break
            at = match.start()
        return self.text.count("\n", 0, at) + 1


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def check_body(
    body: dict[str, Any],
    schema: dict[str, Any],
    at: _Where,
    prefix: str = "",
    meta: Collection[str] = (),
) -> list[Finding]:
    """Findings of one block body (and the blocks inside it) against its schema."""
    out: list[Finding] = []
    arguments, blocks = schema["arguments"], schema["blocks"]
    present: set[str] = set()
    for key, value in fields(body):
        where = _join(prefix, key)
        if key in meta:
            continue
        if key == "dynamic" and isinstance(value, list):  # [{'"label"': {body}}, ...]
            for labelled in value:
                for label, dynamic in fields(labelled):
                    out += _check_dynamic(unquote(label), dynamic, schema, at, prefix)
                    present.add(unquote(label))
        elif is_block_list(value):
            if key not in blocks:
                hint = f'"{key}" is an argument: write {key} = ...' if key in arguments else ""
                out.append(at.finding(where, UNKNOWN_BLOCK, hint or f'no block type "{key}" here'))
                continue
            present.add(key)
            if blocks[key]["max_one"] and len(value) > 1:
                message = f'at most one "{key}" block is allowed, found {len(value)}'
                out.append(at.finding(where, TOO_MANY_BLOCKS, message))
            for item in value:
                out += check_body(item, blocks[key]["block"], at, where)
        elif key in arguments:
            present.add(key)
            if (problem := conversion_error(value, arguments[key]["type"])) is not None:
                out.append(at.finding(where, WRONG_TYPE, f'"{key}" {problem}'))
        else:
            hint = f'"{key}" is a block: write {key} {{ ... }}' if key in blocks else ""
            out.append(at.finding(where, UNKNOWN_ARGUMENT, hint or f'no argument "{key}" here'))
    for name, spec in {**arguments, **blocks}.items():
        if spec["required"] and name not in present:
            what = "argument" if name in arguments else "block"
            message = f'the {what} "{name}" is required'
            out.append(at.finding(_join(prefix, name), MISSING_REQUIRED, message))
    return out


def _check_dynamic(
    label: str, dynamic: dict[str, Any], schema: dict[str, Any], at: _Where, prefix: str
) -> list[Finding]:
    where = _join(prefix, label)
    if label not in schema["blocks"]:
        hint = f'"{label}" is an argument, not a block' if label in schema["arguments"] else ""
        return [at.finding(where, UNKNOWN_BLOCK, hint or f'no block type "{label}" here')]
    out = [
        at.finding(_join(where, key), UNKNOWN_ARGUMENT, f'no argument "{key}" in a dynamic block')
        for key, _ in fields(dynamic)
        if key not in DYNAMIC_META and key != "content"
    ]
    contents = dynamic.get("content", [])
    if not is_block_list(contents) or len(contents) != 1:
        out.append(at.finding(where, UNKNOWN_BLOCK, "a dynamic block needs one content block"))
        return out
    return out + check_body(contents[0], schema["blocks"][label]["block"], at, where)


# --- files --------------------------------------------------------------------------------


def _offset_of(text: str, pattern: str) -> int:
    match = re.search(pattern, text, flags=re.MULTILINE)
    return match.start() if match else 0


def _provider_of(rtype: str, body: dict[str, Any]) -> str:
    explicit = body.get("provider")
    if isinstance(explicit, str):  # "${google.alias}" or "${google-beta}"
        return explicit.removeprefix("${").removesuffix("}").split(".")[0]
    return rtype.split("_")[0]


def _labelled(doc: dict[str, Any], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for block in doc.get(kind, []):
        for rtype, by_name in fields(block):
            for name, body in fields(by_name):
                yield unquote(rtype), unquote(name), body


def check_file(path: Path, schema: dict[str, Any], report: Report, root: Path = REPO) -> None:
    text = path.read_text()
    doc = hcl2.loads(text)
    shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    report.files += 1
    for kind, section, meta in (
        ("resource", "resources", RESOURCE_META),
        ("data", "data_sources", DATA_META),
    ):
        for rtype, name, body in _labelled(doc, kind):
            address = f"{rtype}.{name}" if kind == "resource" else f"data.{rtype}.{name}"
            header = rf'^{kind}\s+"{re.escape(rtype)}"\s+"{re.escape(name)}"'
            at = _Where(file=shown, address=address, text=text, start=_offset_of(text, header))
            provider = _provider_of(rtype, body)
            if provider != "google":
                if rtype.startswith("google_"):
                    message = f'provider "{provider}" has no schema here: use "google"'
                    report.findings.append(at.finding("provider", UNCHECKED_PROVIDER, message))
                else:
                    report.unchecked.append(address)
                continue
            report.checked.append(address)
            if rtype not in schema[section]:
                what = "resource type" if kind == "resource" else "data source"
                message = (
                    f'the google provider {schema["provider"]["version"]} has no {what} "{rtype}"'
                )
                report.findings.append(at.finding("", UNKNOWN_TYPE, message))
                continue
            report.findings += check_body(body, schema[section][rtype], at, meta=meta)
    for block in doc.get("provider", []):
        for name, body in fields(block):
            if unquote(name) != "google":
                continue
            start = _offset_of(text, r'^provider\s+"google"')
            at = _Where(file=shown, address="provider.google", text=text, start=start)
            report.checked.append(at.address)
            report.findings += check_body(body, schema["provider_config"], at, meta=PROVIDER_META)
    report.findings += check_pins(doc, text, shown, schema)


def check_pins(doc: dict[str, Any], text: str, shown: str, schema: dict[str, Any]) -> list[Finding]:
    """Every google provider in required_providers pins the version whose schema is checked."""
    want = schema["provider"]
    out: list[Finding] = []
    for terraform in doc.get("terraform", []):
        for required in terraform.get("required_providers", []):
            for local, spec in fields(required):
                source = unquote(str(spec.get("source", ""))) if isinstance(spec, dict) else ""
                if not source.endswith(("hashicorp/google", "hashicorp/google-beta")):
                    continue
                start = _offset_of(text, r"^terraform\s*\{")
                at = _Where(file=shown, address="terraform", text=text, start=start)
                where = f"required_providers.{local}.version"
                version = unquote(str(spec.get("version", "")))
                if source.endswith("google-beta"):
                    message = f"{source} has no schema here; only {want['source']} is checked"
                    out.append(at.finding(where, PROVIDER_PIN, message))
                elif version != want["version"]:
                    message = (
                        f'version "{version}" must pin exactly "{want["version"]}", '
                        "the version whose schema is checked"
                    )
                    out.append(at.finding(where, PROVIDER_PIN, message))
    return out


def tf_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        found = [path] if path.is_file() else path.rglob("*.tf")
        out += sorted(p for p in found if ".terraform" not in p.parts)
    return out


def check_paths(paths: Iterable[Path], schema: dict[str, Any], root: Path = REPO) -> Report:
    report = Report()
    for path in tf_files(paths):
        check_file(path, schema, report, root)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "terraform"])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--no-download", action="store_true")
    args = parser.parse_args(argv)
    try:
        schema = load_schema(args.cache_dir, download=not args.no_download)
    except SchemaUnavailable as err:
        print(f"check_terraform_schema: no provider schema: {err}", file=sys.stderr)
        return 2
    report = check_paths([p.resolve() for p in args.paths], schema)
    for finding in report.findings:
        print(finding)
    provider = f"{schema['provider']['source']} {schema['provider']['version']}"
    print(
        f"check_terraform_schema: {provider} (from {WHEEL.package} {WHEEL.version}): "
        f"{len(report.checked)} blocks in {report.files} files checked, "
        f"{len(report.findings)} findings; not checked (other providers): "
        f"{', '.join(report.unchecked) or 'none'}"
    )
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
