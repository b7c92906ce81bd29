"""``PreparedCorpus``: a prepared data directory, loaded back for training."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client_data import CLIENT_DATA_FILES, ClientData, load_client_data
from .errors import CorpusError
from .split import ALL_SPLITS, SPLITS
from .tokenizer import WordTokenizer

__all__ = ["PREPARED_FILES", "PreparedCorpus", "load_prepared"]

PREPARED_FILES: tuple[str, ...] = (
    "tokenizer.model",
    "stats.json",
    "prepare.json",
    *(f"{split}/{name}" for split in SPLITS for name in CLIENT_DATA_FILES),
)
"""Files every prepared directory has (``words_per_user.png`` is informative only)."""


@dataclass(frozen=True, eq=False)
class PreparedCorpus:
    """Tokenizer, the splits and the stats of one prepared directory.

    ``proxy`` is None unless the directory was prepared with a
    ``proxy_fraction`` (users set aside for central pretraining).
    """

    data_dir: Path
    tokenizer: WordTokenizer
    train: ClientData
    validation: ClientData
    test: ClientData
    stats: dict[str, Any]
    proxy: ClientData | None = None

    def split(self, name: str) -> ClientData:
        """The split called ``name`` (``train``, ``validation``, ``test`` or ``proxy``)."""
        if name not in ALL_SPLITS:
            raise CorpusError(f"unknown split {name!r}; expected one of {', '.join(ALL_SPLITS)}")
        data: ClientData | None = getattr(self, name)
        if data is None:
            raise CorpusError(
                f"{self.data_dir} has no {name} users (prepare it with `fedkeys data prepare --proxy-fraction F`)"
            )
        return data


def load_prepared(data_dir: Path, *, mmap: bool = False) -> PreparedCorpus:
    """Load what ``prepare_corpus`` wrote; CorpusError names any missing file."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CorpusError(f"{data_dir}: no such directory (run `fedkeys data prepare` first)")
    for relative in PREPARED_FILES:
        if not (data_dir / relative).is_file():
            raise CorpusError(f"{data_dir} is not a prepared corpus: missing {relative} (run `fedkeys data prepare`)")
    try:
        stats = json.loads((data_dir / "stats.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CorpusError(f"{data_dir / 'stats.json'}: not valid JSON ({exc})") from exc
    try:
        tokenizer = WordTokenizer(data_dir / "tokenizer.model")
    except (RuntimeError, ValueError, OSError) as exc:
        raise CorpusError(f"{data_dir / 'tokenizer.model'}: cannot load ({exc})") from exc
    train, validation, test = (load_client_data(data_dir / split, split, mmap=mmap) for split in SPLITS)
    proxy = load_client_data(data_dir / "proxy", "proxy", mmap=mmap) if (data_dir / "proxy").is_dir() else None
    return PreparedCorpus(data_dir, tokenizer, train, validation, test, stats, proxy)
