"""One store factory: the embedded runtime, the cloud runtime and the commands open the same
store from the same settings (SQLite's durability mode included)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from bridge.cli.common import open_store as command_store
from bridge.runtime.embedded import embedded
from bridge.runtime.stores import StoreUnavailable, open_store
from bridge.settings import SettingError, Settings
from statemachine.store.memory import MemoryStore
from statemachine.store.sqlite import SqliteStore


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"COURSEGEN_DATA_DIR": str(tmp_path), **env})


@pytest.mark.parametrize("mode", ["FULL", "NORMAL"])
def test_every_root_opens_sqlite_with_the_configured_durability(tmp_path: Path, mode: str) -> None:
    cfg = settings(tmp_path, COURSEGEN_STORE="sqlite", COURSEGEN_SQLITE_SYNCHRONOUS=mode)
    direct = open_store(cfg)
    assert isinstance(direct, SqliteStore) and direct.synchronous == mode
    assert Path(direct.path) == tmp_path / "events.db"
    rt = embedded(tmp_path, settings=cfg)
    try:
        assert isinstance(rt.store, SqliteStore) and rt.store.synchronous == mode
    finally:
        rt.close()
    from_command = command_store(tmp_path, cfg)  # exists now: the runtime created it
    assert isinstance(from_command, SqliteStore) and from_command.synchronous == mode
    for store in (direct, from_command):
        store.close()


class NoPublisher:
    """The Pub/Sub publisher the cloud runtime is built with; nothing is published here."""

    @staticmethod
    def topic_path(project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"


def test_the_cloud_runtime_honours_the_sqlite_durability_setting(tmp_path: Path) -> None:
    from bridge.runtime.cloud import cloud_runtime

    cfg = settings(
        tmp_path,
        COURSEGEN_STORE="sqlite",
        COURSEGEN_SQLITE_SYNCHRONOUS="NORMAL",
        GOOGLE_CLOUD_PROJECT="p",
        COURSEGEN_DISPATCHER="local",
        COURSEGEN_TASK_SECRET="s3cret",
    )
    rt = cloud_runtime(cfg, publisher=NoPublisher(), tasks_client=object(), scratch=tmp_path / "s")
    try:
        assert isinstance(rt.store, SqliteStore) and rt.store.synchronous == "NORMAL"
    finally:
        rt.close()


def test_a_read_command_refuses_a_store_that_is_not_there(tmp_path: Path) -> None:
    cfg = settings(tmp_path, COURSEGEN_STORE="sqlite")
    with pytest.raises(click.ClickException, match="no event store at"):
        command_store(tmp_path / "typo", cfg)
    assert not (tmp_path / "typo").exists()  # nothing created by looking


def test_an_unknown_store_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="COURSEGEN_STORE='bogus' is not allowed"):
        settings(tmp_path, COURSEGEN_STORE="bogus")


def test_memory_is_refused_where_a_store_must_exist(tmp_path: Path) -> None:
    cfg = settings(tmp_path, COURSEGEN_STORE="memory")
    assert isinstance(open_store(cfg), MemoryStore)
    with pytest.raises(StoreUnavailable, match="keeps nothing"):
        open_store(cfg, must_exist=True)
