"""A tiny typing corpus, prepared once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedkeys.cli import main

_PHRASES = (
    "see you at home tonight",
    "i will call you later",
    "are you coming to the party",
    "thanks for the lovely dinner",
    "running late see you soon",
    "what time is the meeting",
)


def write_corpus(path: Path, users: int = 40) -> Path:
    """Deterministic users typing short, repetitive messages (learnable in seconds)."""
    with path.open("w", encoding="utf-8") as f:
        for u in range(users):
            for m in range(8):
                text = _PHRASES[(u + m) % len(_PHRASES)]
                f.write(json.dumps({"user_id": f"user{u:03d}", "text": text, "timestamp": 1_700_000_000 + m}) + "\n")
    return path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    corpus = write_corpus(root / "logs.jsonl")
    out = root / "prepared"
    assert (
        main(
            [
                "data",
                "prepare",
                "--corpus",
                f"jsonl:{corpus}",
                "--out",
                str(out),
                "--vocab-size",
                "60",
                "--min-words",
                "5",
                "--no-progress",
            ]
        )
        == 0
    )
    return out
