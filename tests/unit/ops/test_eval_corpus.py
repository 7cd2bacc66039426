"""``coursegen eval``'s corpus: an item of the tier that is not built on this machine is left
out and named, one asked for by --only must be there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli.eval import eval_command
from bridge.tooling.evaluate import CorpusMissing, load_corpus


def corpus(tmp_path: Path) -> Path:
    items = {
        name: {"tier": "ci", "kind": "speech", "video": f"{name}/video.mp4",
               "truth": f"{name}/truth.json", "source": "test", "licence": "test", "notes": ""}
        for name in ("built", "absent")
    }  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps({"items": items}))
    (tmp_path / "built").mkdir()
    (tmp_path / "built" / "video.mp4").write_bytes(b"not really a video")
    (tmp_path / "built" / "truth.json").write_text(json.dumps({"stretches": []}))
    return tmp_path


def test_an_unbuilt_item_of_the_tier_is_left_out_and_named(tmp_path: Path) -> None:
    named: list[str] = []
    items = load_corpus(corpus(tmp_path), tier="ci", skipped=named.append)
    assert [item.name for item in items] == ["built"]
    assert len(named) == 1 and "'absent' not built" in named[0]


def test_an_unbuilt_item_asked_for_by_name_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusMissing, match="'absent' not built"):
        load_corpus(corpus(tmp_path), only=["absent"])


def test_eval_with_nothing_built_says_how_to_build(tmp_path: Path) -> None:
    folder = corpus(tmp_path)
    (folder / "built" / "video.mp4").unlink()
    result = CliRunner().invoke(eval_command, ["--corpus", str(folder), "--tier", "ci"])
    assert result.exit_code == 1
    assert "no item of tier 'ci' is built" in result.output
