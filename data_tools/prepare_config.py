"""``PrepareConfig``: every knob of corpus preparation, with its default."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["PrepareConfig"]


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_fraction(name: str, value: object) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


@dataclass(frozen=True)
class PrepareConfig:
    """How a corpus becomes a federated dataset; validated on construction.

    ``min_words``: users who typed fewer words in total are dropped before
    the split (too little data to train or evaluate on).
    ``validation_fraction`` / ``test_fraction``: expected share of users per
    held-out split; the split is by a hash of the user id salted with
    ``split_seed``, so it is stable when users are added.
    ``proxy_fraction``: share of users set aside as public/proxy data for
    central pretraining (``proxy/``); taken from the training users only.
    ``vocab_size``: requested vocabulary including the 4 special ids; the
    trained one can be smaller on a small corpus.
    ``tokenizer_seed``: picks which training sentences feed the tokenizer
    when there are more than ``tokenizer_max_sentences``.
    ``skip_bad``: skip and count bad input lines instead of failing.
    """

    min_words: int = 20
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    proxy_fraction: float = 0.0
    split_seed: int = 0
    vocab_size: int = 10_000
    tokenizer_seed: int = 0
    tokenizer_max_sentences: int = 2_000_000
    skip_bad: bool = False

    def __post_init__(self) -> None:
        _check_int("min_words", self.min_words, 0)
        _check_fraction("validation_fraction", self.validation_fraction)
        _check_fraction("test_fraction", self.test_fraction)
        _check_fraction("proxy_fraction", self.proxy_fraction)
        if self.validation_fraction + self.test_fraction + self.proxy_fraction >= 1.0:
            raise ValueError(
                "validation_fraction + test_fraction + proxy_fraction must be < 1, got "
                f"{self.validation_fraction} + {self.test_fraction} + {self.proxy_fraction}"
            )
        _check_int("split_seed", self.split_seed, 0)
        _check_int("vocab_size", self.vocab_size, 8)
        _check_int("tokenizer_seed", self.tokenizer_seed, 0)
        _check_int("tokenizer_max_sentences", self.tokenizer_max_sentences, 1)
        if type(self.skip_bad) is not bool:
            raise ValueError(f"skip_bad must be a bool, got {self.skip_bad!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (written to ``prepare.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PrepareConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown PrepareConfig field(s): {', '.join(unknown)}")
        return cls(**values)
