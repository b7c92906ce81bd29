"""Assign users to train / validation / test by a salted hash of their id.

A federated model must be evaluated on people it never trained on, so the
split is by user, not by example.  Hashing ``f"{seed}:{user_id}"`` makes a
user's split depend on nothing else: adding users (or re-running on a
bigger log) never moves an existing user to another split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = [
    "SPLITS",
    "Split",
    "assign_split",
    "drop_small_users",
    "split_users",
    "user_hash_unit",
]

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


def user_hash_unit(user_id: str, seed: int) -> float:
    """Map a user id to [0, 1) with SHA-256 of ``f"{seed}:{user_id}"``."""
    digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(user_id: str, *, seed: int, validation_fraction: float, test_fraction: float) -> Split:
    """The split of one user: test below ``test_fraction``, then validation."""
    unit = user_hash_unit(user_id, seed)
    if unit < test_fraction:
        return "test"
    if unit < test_fraction + validation_fraction:
        return "validation"
    return "train"


def split_users(
    user_ids: Iterable[str],
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
) -> dict[Split, list[str]]:
    """Group users by split; each list is sorted so outputs are reproducible."""
    groups: dict[Split, list[str]] = {name: [] for name in SPLITS}
    for user_id in user_ids:
        split = assign_split(
            user_id,
            seed=seed,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
        )
        groups[split].append(user_id)
    return {name: sorted(users) for name, users in groups.items()}


def drop_small_users(word_counts: Mapping[str, int], min_words: int) -> tuple[list[str], list[str]]:
    """``(kept, dropped)`` user ids, sorted; dropped users typed < ``min_words`` words."""
    kept = sorted(u for u, n in word_counts.items() if n >= min_words)
    dropped = sorted(u for u, n in word_counts.items() if n < min_words)
    return kept, dropped
