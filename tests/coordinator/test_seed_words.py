"""``seed_words.first_seed_word`` is numpy's ``SeedSequence(entropy).generate_state(1)[0]``, bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from coordinator.seed_words import first_seed_word


def _numpy(entropy: list[int]) -> int:
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def test_first_seed_word_matches_numpy_on_session_seeds() -> None:
    for task_seed in (0, 1, 7, 2**31 - 1, 2**32 - 1, 2**32, 2**63 + 5):
        for index in (1, 2, 3, 1000, 999_999):
            entropy = [task_seed, 0x5E55, 4, index]
            assert first_seed_word(entropy) == _numpy(entropy)


def test_first_seed_word_matches_numpy_on_any_entropy_length() -> None:
    rng = random.Random(0)
    for _ in range(500):
        entropy = [rng.choice([0, 1, rng.getrandbits(32), rng.getrandbits(64), rng.getrandbits(100)])
                   for _ in range(rng.randint(1, 9))]  # fmt: skip
        assert first_seed_word(entropy) == _numpy(entropy)


def test_first_seed_word_known_value() -> None:
    assert first_seed_word([0]) == _numpy([0]) == 2968811710


def test_first_seed_word_refuses_negative_entropy() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        first_seed_word([1, -1])
