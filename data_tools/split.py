"""Assign users to train / validation / test (and proxy) by a salted hash of their id.

A federated model must be evaluated on people it never trained on, so the
split is by user, not by example.  Hashing ``f"{seed}:{user_id}"`` makes a
user's split depend on nothing else: adding users (or re-running on a
bigger log) never moves an existing user to another split.

The optional ``proxy`` split holds users set aside as public or proxy data:
production keyboards pretrain centrally on data that is not the federated
population, then train federated on phones (Xu et al. 2023, "Federated
Learning of Gboard Language Models with Differential Privacy"; Nguyen et al.
2023, "Where to Begin?"). Proxy users are carved out of what would otherwise
be training users, so validation and test users never move and are never
trained on by either step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = [
    "ALL_SPLITS",
    "SPLITS",
    "Split",
    "assign_split",
    "drop_small_users",
    "split_users",
    "user_hash_unit",
]

Split = Literal["train", "validation", "test", "proxy"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
"""The splits every prepared directory has."""
ALL_SPLITS: tuple[Split, ...] = (*SPLITS, "proxy")
"""With the optional proxy split (empty unless ``proxy_fraction`` > 0)."""


def user_hash_unit(user_id: str, seed: int) -> float:
    """Map a user id to [0, 1) with SHA-256 of ``f"{seed}:{user_id}"``."""
    digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(
    user_id: str, *, seed: int, validation_fraction: float, test_fraction: float, proxy_fraction: float = 0.0
) -> Split:
    """The split of one user: test below ``test_fraction``, then validation, then proxy, then train.

    Example: with fractions 0.1 / 0.1 / 0.3, hash units [0, 0.1) are test,
    [0.1, 0.2) validation, [0.2, 0.5) proxy and [0.5, 1) train.
    """
    unit = user_hash_unit(user_id, seed)
    if unit < test_fraction:
        return "test"
    if unit < test_fraction + validation_fraction:
        return "validation"
    if unit < test_fraction + validation_fraction + proxy_fraction:
        return "proxy"
    return "train"


def split_users(
    user_ids: Iterable[str],
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    proxy_fraction: float = 0.0,
) -> dict[Split, list[str]]:
    """Group users by split (all four, proxy possibly empty); each list is sorted so outputs are reproducible."""
    groups: dict[Split, list[str]] = {name: [] for name in ALL_SPLITS}
    for user_id in user_ids:
        split = assign_split(
            user_id,
            seed=seed,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
            proxy_fraction=proxy_fraction,
        )
        groups[split].append(user_id)
    return {name: sorted(users) for name, users in groups.items()}


def drop_small_users(word_counts: Mapping[str, int], min_words: int) -> tuple[list[str], list[str]]:
    """``(kept, dropped)`` user ids, sorted; dropped users typed < ``min_words`` words."""
    kept = sorted(u for u, n in word_counts.items() if n >= min_words)
    dropped = sorted(u for u, n in word_counts.items() if n < min_words)
    return kept, dropped
