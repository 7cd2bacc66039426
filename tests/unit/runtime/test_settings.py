"""Settings are checked once, at start-up: a bad value names its variable, the value and
what is allowed, and stops the runtime from being built (no task ever reads it)."""

from __future__ import annotations

import pytest

from bridge.runtime.embedded import embedded
from bridge.settings import SETTINGS, SettingError, Settings


@pytest.mark.parametrize(
    ("env", "value", "allowed"),
    [
        ("COURSEGEN_MAX_VIDEO_BYTES", "4GB", "a whole number of bytes"),
        ("COURSEGEN_MAX_VIDEO_BYTES", "0", "1 or more"),
        ("COURSEGEN_MAX_VIDEO_SECONDS", "4h", "a whole number of seconds"),
        ("COURSEGEN_ROLLOUT_PERCENT", "150", "from 0 to 100"),
        ("COURSEGEN_RECONCILE_QUIET_SECONDS", "five", "0 or more"),
        ("COURSEGEN_STORE", "postgres", "memory, sqlite or firestore"),
        ("COURSEGEN_AUTH", "basic", "hmac, oidc or none"),
        ("COURSEGEN_LEGACY_TRIGGER_ENABLED", "maybe", "true or false"),
        ("COURSEGEN_STEP_URLS", "[1]", "a JSON object"),
        ("COURSEGEN_AI_TIMEOUT_S", "-1", "greater than 0"),
        ("COURSEGEN_SQLITE_SYNCHRONOUS", "OFF", "FULL, NORMAL or EXTRA"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_the_value_and_what_is_allowed(
    env, value, allowed
):
    with pytest.raises(SettingError) as caught:
        Settings.from_env({env: value})
    err = caught.value
    assert (err.env, err.value) == (env, value)
    assert allowed in err.allowed
    assert str(err).startswith(f"{env}={value!r} is not allowed: ")
    assert isinstance(err, ValueError)


def test_every_default_and_the_usual_spellings_are_accepted():
    Settings.from_env({})
    assert {s.env: s.default for s in SETTINGS} == dict(Settings.from_env({}).values)
    cfg = Settings.from_env(
        {
            "COURSEGEN_MAX_VIDEO_BYTES": "1000",
            "COURSEGEN_LEGACY_TRIGGER_ENABLED": "TRUE",
            "COURSEGEN_SQLITE_SYNCHRONOUS": "normal",
            "COURSEGEN_DISPATCHER": "",
            "COURSEGEN_AI_TIMEOUT_S": "2.5",
        }
    )
    assert cfg.get_int("COURSEGEN_MAX_VIDEO_BYTES") == 1000
    assert cfg.get_bool("COURSEGEN_LEGACY_TRIGGER_ENABLED")


def test_the_embedded_runtime_refuses_to_start_on_a_bad_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEGEN_STORE", "memory")
    monkeypatch.setenv("COURSEGEN_MAX_VIDEO_BYTES", "4GB")
    with pytest.raises(SettingError, match="COURSEGEN_MAX_VIDEO_BYTES='4GB'"):
        embedded(tmp_path)
