from typing import Any

import pytest

from data_tools.prepare_config import PrepareConfig


def test_prepare_config_defaults() -> None:
    config = PrepareConfig()
    assert config.min_words == 20
    assert config.validation_fraction == 0.1
    assert config.test_fraction == 0.1
    assert config.vocab_size == 10_000
    assert config.skip_bad is False


def test_prepare_config_dict_round_trip() -> None:
    config = PrepareConfig(min_words=3, vocab_size=500, split_seed=7, skip_bad=True)
    assert PrepareConfig.from_dict(config.to_dict()) == config


def test_prepare_config_from_dict_unknown_key_rejected() -> None:
    with pytest.raises(ValueError, match="bogus"):
        PrepareConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_words", -1),
        ("min_words", 2.5),
        ("validation_fraction", 1.0),
        ("validation_fraction", -0.1),
        ("test_fraction", float("nan")),
        ("vocab_size", 4),
        ("vocab_size", True),
        ("split_seed", -3),
        ("tokenizer_max_sentences", 0),
        ("skip_bad", "yes"),
    ],
)
def test_prepare_config_invalid_value_named(field: str, value: Any) -> None:
    with pytest.raises(ValueError) as info:
        PrepareConfig(**{field: value})
    assert field in str(info.value)
    assert repr(value) in str(info.value)


def test_prepare_config_fractions_sum_below_one() -> None:
    with pytest.raises(ValueError, match="0.5 \\+ 0.5"):
        PrepareConfig(validation_fraction=0.5, test_fraction=0.5)


def test_prepare_config_proxy_counts_in_the_fraction_sum() -> None:
    with pytest.raises(ValueError, match="0.1 \\+ 0.1 \\+ 0.8"):
        PrepareConfig(validation_fraction=0.1, test_fraction=0.1, proxy_fraction=0.8)
