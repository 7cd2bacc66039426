"""The deployment's transcription settings: the model folder names what is metered, the beam
comes from COURSEGEN_WHISPER_BEAM_SIZE, and a bad value is a permanent, named error (a retry
cannot fix a setting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.ai.offline import OfflineProvider
from handlers.ai.port import PermanentProviderError
from handlers.media.speech import (
    BEAM_ENV,
    DECODING,
    MODEL_DIR_ENV,
    SpeechSettingError,
    configured_decoding,
    model_label,
)


def test_unset_the_beam_is_the_default_greedy_one(monkeypatch):
    monkeypatch.delenv(BEAM_ENV, raising=False)
    assert configured_decoding() == DECODING
    assert DECODING.beam_size == 1


def test_the_beam_comes_from_the_environment_and_nothing_else_changes(monkeypatch):
    monkeypatch.setenv(BEAM_ENV, " 5 ")
    decoding = configured_decoding()
    assert decoding.beam_size == 5
    assert decoding.condition_on_previous_text is DECODING.condition_on_previous_text
    assert decoding.redecode_gaps is DECODING.redecode_gaps


@pytest.mark.parametrize("raw", ["0", "11", "five", "2.5", "-1"])
def test_a_beam_that_is_not_1_to_10_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv(BEAM_ENV, raw)
    with pytest.raises(SpeechSettingError, match=f"{BEAM_ENV}='{raw}'.*1 to 10"):
        configured_decoding()


def test_the_offline_provider_fails_a_bad_setting_permanently_before_any_decode(
    monkeypatch, tmp_path
):
    monkeypatch.setenv(BEAM_ENV, "many")

    def no_model() -> None:
        raise AssertionError("the model was loaded before the setting was checked")

    monkeypatch.setattr("handlers.media.speech.load_model", no_model)
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    with pytest.raises(PermanentProviderError, match=BEAM_ENV):
        OfflineProvider().transcribe(audio, language="en")


def test_the_model_label_names_the_folder_in_use(monkeypatch):
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    assert model_label() == "faster-whisper tiny.en int8"
    monkeypatch.setenv(MODEL_DIR_ENV, str(Path("/srv/models/whisper-base")))
    assert model_label() == "faster-whisper whisper-base int8"
