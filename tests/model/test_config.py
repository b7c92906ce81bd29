"""Tests for the model configuration and its size presets (model/config.py)."""

from __future__ import annotations

import dataclasses

import pytest

from model.config import PRESETS, ModelConfig


def test_presets_exist_with_expected_names() -> None:
    assert set(PRESETS) == {"tiny", "small", "gboard"}


def test_preset_gboard_matches_hard_et_al_2018() -> None:
    config = ModelConfig.from_preset("gboard", vocab_size=10_000)
    assert config.embedding_dim == 96
    assert config.units == 670
    assert config.num_layers == 1
    assert config.cell == "cifg"
    assert config.vocab_size == 10_000


@pytest.mark.parametrize("preset", ["tiny", "small", "gboard"])
def test_preset_builds_valid_config(preset: str) -> None:
    config = ModelConfig.from_preset(preset, vocab_size=40)
    for name, value in PRESETS[preset].items():
        assert getattr(config, name) == value


def test_preset_tiny_is_smaller_than_small() -> None:
    tiny = ModelConfig.from_preset("tiny", vocab_size=40)
    small = ModelConfig.from_preset("small", vocab_size=40)
    assert tiny.units < small.units
    assert tiny.embedding_dim < small.embedding_dim


def test_preset_overrides_apply() -> None:
    config = ModelConfig.from_preset("tiny", vocab_size=40, cell="lstm", units=8)
    assert config.cell == "lstm"
    assert config.units == 8
    assert config.embedding_dim == PRESETS["tiny"]["embedding_dim"]


def test_preset_unknown_message_lists_presets() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'huge'") as info:
        ModelConfig.from_preset("huge", vocab_size=40)
    message = str(info.value)
    for name in ("tiny", "small", "gboard"):
        assert name in message


def test_preset_override_still_validated() -> None:
    with pytest.raises(ValueError, match=r"units .* got 0"):
        ModelConfig.from_preset("tiny", vocab_size=40, units=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("units", 0),
        ("units", -3),
        ("embedding_dim", 0),
        ("num_layers", 0),
        ("vocab_size", 0),
        ("units", 2.5),
        ("units", True),
    ],
)
def test_config_nonpositive_or_non_int_size_rejected(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"vocab_size": 40, field: value}
    with pytest.raises(ValueError, match=rf"ModelConfig\.{field} .*got {value!r}"):
        ModelConfig(**kwargs)  # type: ignore[arg-type]


def test_config_bad_cell_named() -> None:
    with pytest.raises(ValueError, match=r"ModelConfig\.cell .*got 'gru'"):
        ModelConfig(vocab_size=40, cell="gru")  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), [("pad_id", -1), ("unk_id", 40), ("bos_id", 99), ("eos_id", 40)])
def test_config_special_id_out_of_range_named(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"ModelConfig\.{field} .*\[0, 40\), got {value}"):
        ModelConfig(vocab_size=40, **{field: value})  # type: ignore[arg-type]


def test_config_special_id_beyond_small_vocab_rejected() -> None:
    # Defaults put eos at 3: a vocabulary of 3 cannot hold it.
    with pytest.raises(ValueError, match=r"eos_id .*got 3"):
        ModelConfig(vocab_size=3)


def test_config_duplicate_special_ids_rejected() -> None:
    with pytest.raises(ValueError, match="distinct") as info:
        ModelConfig(vocab_size=40, bos_id=1)
    assert "'unk_id': 1" in str(info.value)
    assert "'bos_id': 1" in str(info.value)


def test_config_special_ids_order() -> None:
    config = ModelConfig(vocab_size=40, pad_id=5, unk_id=6, bos_id=7, eos_id=8)
    assert config.special_ids == (5, 6, 7, 8)


def test_config_is_frozen() -> None:
    config = ModelConfig(vocab_size=40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.units = 3  # type: ignore[misc]


def test_config_dict_round_trip() -> None:
    config = ModelConfig(
        vocab_size=33,
        embedding_dim=7,
        units=5,
        num_layers=2,
        cell="lstm",
        pad_id=3,
        unk_id=2,
        bos_id=1,
        eos_id=0,
    )
    data = config.to_dict()
    assert data == {
        "vocab_size": 33,
        "embedding_dim": 7,
        "units": 5,
        "num_layers": 2,
        "cell": "lstm",
        "pad_id": 3,
        "unk_id": 2,
        "bos_id": 1,
        "eos_id": 0,
    }
    assert ModelConfig.from_dict(data) == config


def test_config_from_dict_unknown_field_rejected() -> None:
    data = {**ModelConfig(vocab_size=40).to_dict(), "dropout": 0.1, "alpha": 1}
    with pytest.raises(ValueError, match=r"unknown ModelConfig fields: \['alpha', 'dropout'\]"):
        ModelConfig.from_dict(data)


def test_config_from_dict_validates_values() -> None:
    data = {**ModelConfig(vocab_size=40).to_dict(), "units": 0}
    with pytest.raises(ValueError, match="got 0"):
        ModelConfig.from_dict(data)


def test_config_from_dict_missing_vocab_rejected() -> None:
    with pytest.raises(TypeError, match="vocab_size"):
        ModelConfig.from_dict({"units": 4})
