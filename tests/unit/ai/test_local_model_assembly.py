"""coursegen model assemble: parts joined from small wheels and sdists made here, refused on any
difference from the pins (the real pins are checked for shape; their files are not needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.tooling.local_model import (
    PINS,
    AssemblyError,
    ModelMismatch,
    ModelPin,
    assemble,
    requirements,
    verify,
)

PARTS = [bytes([n]) * (1000 + n) for n in range(1, 12)]  # 11 parts: part10 sorts after part9


def wheel(
    folder: Path, n: int, data: bytes, package: str = "fake-model-part{n}", version: str = "1.0.0"
) -> Path:
    name = package.format(n=n).replace("-", "_")
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{name}/data/part{n:02d}.bin", data)
        archive.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\n")
    return path


def sdist(folder: Path, n: int, data: bytes) -> Path:
    name = f"fake_model_part{n}"
    path = folder / f"{name}-1.0.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(f"{name}-1.0.0/{name}/data/part{n:02d}.bin")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def pin_of(archives: list[Path], parts: list[bytes], **changes: object) -> ModelPin:
    joined = b"".join(parts)
    fields: dict[str, object] = dict(
        key="fake",
        upstream="test",
        file_name="fake.gguf",
        package="fake-model-part{n}",
        version="1.0.0",
        wheel_sha256=tuple(hashlib.sha256(a.read_bytes()).hexdigest() for a in archives),
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
    )
    fields.update(changes)
    return ModelPin(**fields)  # type: ignore[arg-type]


@pytest.fixture
def wheels(tmp_path) -> tuple[Path, ModelPin]:
    folder = tmp_path / "parts"
    folder.mkdir()
    archives = [wheel(folder, n, data) for n, data in enumerate(PARTS, start=1)]
    return folder, pin_of(archives, PARTS)


def test_the_parts_are_joined_in_numeric_order_and_verified(wheels, tmp_path):
    folder, pin = wheels
    out = assemble(pin, folder, tmp_path / "models" / "fake.gguf")
    assert out.read_bytes() == b"".join(PARTS)
    verify(pin, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["fake.gguf"]


def test_a_joined_file_that_is_not_the_pinned_one_is_refused_and_not_left_behind(wheels, tmp_path):
    folder, pin = wheels
    wrong = dataclasses.replace(pin, sha256="0" * 64)
    out = tmp_path / "fake.gguf"
    with pytest.raises(ModelMismatch, match="is not the pinned 0000") as caught:
        assemble(wrong, folder, out)
    assert caught.value.actual == pin.sha256
    assert list(tmp_path.glob("fake.gguf*")) == []


def test_a_wheel_that_differs_from_its_pin_is_refused_before_anything_is_written(wheels, tmp_path):
    folder, pin = wheels
    wheel(folder, 3, b"tampered")
    with pytest.raises(ModelMismatch, match=re.escape("fake_model_part3-1.0.0-py3-none-any.whl")):
        assemble(pin, folder, tmp_path / "fake.gguf")
    assert not (tmp_path / "fake.gguf.partial").exists()


def test_a_missing_part_names_the_package_and_the_download_command(wheels, tmp_path):
    folder, pin = wheels
    (folder / "fake_model_part7-1.0.0-py3-none-any.whl").unlink()
    with pytest.raises(
        AssemblyError, match=r"fake-model-part7==1\.0\.0 is not in .*--require-hashes"
    ):
        assemble(pin, folder, tmp_path / "fake.gguf")


def test_sdists_serve_as_well_and_the_joined_sha256_still_guards_them(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    archives = [sdist(folder, n, data) for n, data in enumerate(PARTS[:3], start=1)]
    pin = pin_of(archives, PARTS[:3])
    assert assemble(pin, folder, tmp_path / "m.gguf").read_bytes() == b"".join(PARTS[:3])
    sdist(folder, 2, b"other bytes")
    with pytest.raises(AssemblyError):
        assemble(pin, folder, tmp_path / "m2.gguf")
    assert not (tmp_path / "m2.gguf").exists()


def test_verify_refuses_a_file_of_another_size_or_content(wheels, tmp_path):
    _, pin = wheels
    other = tmp_path / "other.gguf"
    other.write_bytes(b"x" * pin.size)
    with pytest.raises(ModelMismatch):
        verify(pin, other)
    other.write_bytes(b"short")
    with pytest.raises(AssemblyError, match="not the pinned"):
        verify(pin, other)


def test_the_real_pins_are_complete_and_their_requirements_pin_every_part_by_hash():
    assert set(PINS) == {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    assert [PINS[k].parts for k in sorted(PINS)] == [6, 22]
    for pin in PINS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", pin.sha256)
        assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in pin.wheel_sha256)
        assert len(set(pin.wheel_sha256)) == pin.parts
        lines = requirements(pin).splitlines()
        assert len(lines) == pin.parts
        assert lines[9 if pin.parts > 9 else 0].startswith(
            f"{pin.package_name(10 if pin.parts > 9 else 1)}=={pin.version} --hash=sha256:"
        )


def test_the_cli_refuses_parts_that_are_not_the_pinned_ones(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pin = PINS["qwen2.5-coder-0.5b"]
    for n in range(1, pin.parts + 1):
        wheel(folder, n, b"not the model", package=pin.package, version=pin.version)
    out = tmp_path / "q.gguf"
    result = CliRunner().invoke(
        main, ["model", "assemble", pin.key, "--from", str(folder), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "is not the pinned" in result.output and "refusing it" in result.output
    assert not out.exists()


def test_the_cli_prints_the_requirements_file():
    result = CliRunner().invoke(main, ["model", "requirements", "qwen2.5-coder-0.5b"])
    assert result.exit_code == 0
    assert result.output == requirements(PINS["qwen2.5-coder-0.5b"])
