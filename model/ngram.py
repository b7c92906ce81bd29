"""Interpolated modified Kneser-Ney n-gram next-word model: the Gboard baseline.

Why this exists: Hard et al. 2018 ("Federated learning for mobile keyboard prediction")
compare the federated LSTM with the n-gram model Gboard shipped in production (recall@1
16.5% for the server-trained LSTM vs 13.0% for the n-gram). fedkeys needs the same kind of
reference on its own data and vocabulary, evaluated with the same metric code paths.

Why hand-written: nltk.lm's ``KneserNeyInterpolated`` scores one (word, context) pair at a
time in Python, so a top-k over a 10k vocabulary at every position is far too slow; the
``kenlm`` wheel can only query ARPA/binary models, not estimate them (``lmplz`` is a
separate C++ binary). Here n-grams are int64 mixed-radix keys counted with ``np.unique``, and
the full next-word distribution of a batch of histories is a few vectorized scale/scatter
passes: on one core, fitting 700k tokens takes ~0.3 s and evaluating 100k positions at
vocab 10k ~4 s. Counting and top-k helpers live in ``model/_ngram_counts.py``.

Model (Kneser & Ney 1995; interpolated modified KN of Chen & Goodman 1998, TR-10-98):

    p_k(w|h) = (c_k(hw) - D_k(c_k(hw))) / c_k(h.) + gamma_k(h) * p_{k-1}(w|h')
    gamma_k(h) = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3+ N3+(h.)) / c_k(h.)

h' drops the oldest word of h. At the highest order N, c_N are raw counts; at lower orders
they are continuation counts c_k(hw) = N1+(. h w), the number of distinct words seen to the
left (the Kneser-Ney idea: a lower order only matters when the longer context is novel). If h
was never seen as a context at order k, p_k(.|h) = p_{k-1}(.|h'). p_0 is uniform, so every
target word has nonzero probability. Per order, the three discounts come from the
count-of-counts n1..n4 of that order's counts (Chen & Goodman eq. 26):
Y = n1/(n1+2n2), D1 = 1-2Y n2/n1, D2 = 2-3Y n3/n2, D3+ = 3-4Y n4/n3. When that is undefined
(some n_r = 0) or a discount falls outside (0, r], the order uses (0.5, 1.0, 1.5) like
KenLM's ``--discount_fallback``; tiny corpora (tests, small federated clients) hit this.

Target vocabulary: pad, bos and eos are never targets (examples carry no bos, and no eos is
appended), so the distribution is over V' = vocab minus {pad, bos, eos}: p_0 is uniform over
V' and those three ids get exactly zero, which makes each p_k sum to 1 over V' without any
renormalization. unk is an ordinary word (OOV words were mapped to it). An example
w_1..w_L predicts w_i from (bos,)*(N-1) + w_1..w_{i-1} truncated to its last N-1 ids; bos is
treated as an ordinary context id (as in nltk; KenLM instead keeps raw counts for n-grams
starting with <s>).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import zipfile
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model._ngram_counts import (
    FloatArray,
    IntArray,
    build_table,
    count_ngrams,
    encode,
    estimate_discounts,
    positions,
    top_k_rows,
)

logger = logging.getLogger(__name__)

# Preceding words of one example: a list or a 1-D int array.
History = Sequence[int] | npt.NDArray[np.integer[Any]]

_FORMAT_VERSION = 1
_BATCH = 256  # histories per vectorized distribution pass (256 x 10k float64 = 20 MB)


@dataclass(frozen=True, kw_only=True)
class NgramConfig:
    """Model order and the vocabulary's special ids (shared with the rest of fedkeys)."""

    order: int = 3
    vocab_size: int
    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"order must be an int >= 1, got {self.order!r}")
        specials = (self.pad_id, self.unk_id, self.bos_id, self.eos_id)
        if not isinstance(self.vocab_size, int) or self.vocab_size < 5:
            raise ValueError(f"vocab_size must be an int >= 5 (4 special ids + 1 word), got {self.vocab_size!r}")
        for name, value in zip(("pad_id", "unk_id", "bos_id", "eos_id"), specials, strict=True):
            if not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(f"{name} must be in [0, {self.vocab_size}), got {value!r}")
        if len(set(specials)) != 4:
            raise ValueError(f"special ids must be distinct, got {specials}")
        # n-grams are int64 keys sum(id_j * vocab_size**j): vocab_size**order must fit.
        if self.vocab_size**self.order >= 2**63:
            raise ValueError(
                f"vocab_size**order must be < 2**63 for int64 n-gram keys, got "
                f"vocab_size={self.vocab_size}, order={self.order}"
            )


class KneserNeyLM:
    """Interpolated modified Kneser-Ney LM over word ids; build with ``fit`` or ``load``."""

    def __init__(
        self,
        config: NgramConfig,
        keys: Sequence[IntArray],
        counts: Sequence[IntArray],
        discounts: FloatArray,
    ) -> None:
        """keys[k-1]/counts[k-1]: sorted k-gram keys and their (continuation) counts."""
        self.config = config
        self._keys = [np.asarray(k, dtype=np.int64) for k in keys]
        self._counts = [np.asarray(c, dtype=np.int64) for c in counts]
        self._discounts = np.asarray(discounts, dtype=np.float64).reshape(config.order, 3)
        v = config.vocab_size
        self._tables = [
            build_table(k, c, d, v) for k, c, d in zip(self._keys, self._counts, self._discounts, strict=True)
        ]
        # p_1 does not depend on the history: precompute it once on top of uniform p_0.
        uniform = np.full(v, 1.0 / (v - 3))
        uniform[[config.pad_id, config.bos_id, config.eos_id]] = 0.0
        self._p1 = self._apply_order(uniform[None, :], np.zeros((1, 0), np.int64), 1)[0]

    @property
    def discounts(self) -> FloatArray:
        """(order, 3) array of D1, D2, D3+ per order, row k-1 for order k."""
        return self._discounts.copy()

    @property
    def num_ngrams(self) -> tuple[int, ...]:
        """Distinct k-grams stored for k = 1..order."""
        return tuple(int(k.shape[0]) for k in self._keys)

    @classmethod
    def fit(cls, examples: Iterable[npt.ArrayLike], config: NgramConfig) -> KneserNeyLM:
        """Count n-grams, derive continuation counts and discounts; O(tokens log tokens)."""
        ctx, targets = _positions(examples, config)
        keys, counts = count_ngrams(ctx, targets, config.vocab_size)
        discounts = np.array(
            [estimate_discounts(c, k + 1) for k, c in enumerate(counts)],
            dtype=np.float64,
        )
        logger.info(
            "fitted order-%d KN on %d tokens: n-grams per order %s, discounts %s",
            config.order,
            targets.shape[0],
            [c.shape[0] for c in counts],
            discounts.tolist(),
        )
        return cls(config, keys, counts, discounts)

    def _apply_order(self, probs: FloatArray, ctx: IntArray, k: int) -> FloatArray:
        """In place: p_k = direct_k + gamma_k * p_{k-1} for rows whose context was seen."""
        tab = self._tables[k - 1]
        if tab.ctx_keys.shape[0] == 0:
            return probs
        keys = encode(ctx[:, ctx.shape[1] - (k - 1) :], self.config.vocab_size)
        idx = np.minimum(np.searchsorted(tab.ctx_keys, keys), tab.ctx_keys.shape[0] - 1)
        rows = np.flatnonzero(tab.ctx_keys[idx] == keys)
        ci = idx[rows]
        gamma = np.ones(probs.shape[0])
        gamma[rows] = tab.ctx_gamma[ci]
        probs *= gamma[:, None]
        lens = tab.ctx_end[ci] - tab.ctx_start[ci]
        offsets = np.cumsum(lens) - lens
        ngram = np.arange(int(lens.sum())) + np.repeat(tab.ctx_start[ci] - offsets, lens)
        probs[np.repeat(rows, lens), tab.words[ngram]] += tab.adj[ngram]
        return probs

    def _distributions(self, ctx: IntArray) -> FloatArray:
        """(B, vocab) next-word distributions for B contexts of order-1 ids each."""
        probs = np.tile(self._p1, (ctx.shape[0], 1))
        for k in range(2, self.config.order + 1):
            self._apply_order(probs, ctx, k)
        return probs

    def _history_context(self, history: History) -> IntArray:
        cfg = self.config
        hist = np.asarray(history, dtype=np.int64).reshape(-1)
        if hist.size and (hist.min() < 0 or hist.max() >= cfg.vocab_size):
            raise ValueError(f"history ids must be in [0, {cfg.vocab_size}), got {hist.tolist()}")
        padded = np.concatenate([np.full(cfg.order - 1, cfg.bos_id, dtype=np.int64), hist])
        return padded[padded.shape[0] - (cfg.order - 1) :][None, :]

    def next_word_probs(self, history: History) -> FloatArray:
        """p(. | history) over the whole vocab (zero on pad/bos/eos); sums to 1.

        ``history`` is the example's preceding words without bos (a leading bos is harmless).
        """
        probs: FloatArray = self._distributions(self._history_context(history))[0]
        return probs

    def top_k(self, history: History, k: int, special_ids: Collection[int] | None = None) -> IntArray:
        """The k most probable next words, never a special id; ties go to the lowest id."""
        probs = self.next_word_probs(history)
        probs[self._special_list(special_ids)] = -1.0
        top: IntArray = top_k_rows(probs[None, :], self._check_k(k, special_ids))[0]
        return top

    def evaluate(
        self,
        examples: Iterable[npt.ArrayLike],
        *,
        k_values: Sequence[int] = (1, 3),
        special_ids: Collection[int] | None = None,
    ) -> dict[str, float]:
        """Keyboard metrics over every next-word position of every example.

        Keys: tokens, oov_targets (ints); recall_at_{k} (unk target = miss, all positions in
        the denominator); recall_at_{k}_no_oov (unk-target positions dropped); perplexity and
        loss (exp / mean of target NLL over all positions, unk included). Top-k predictions
        exclude ``special_ids`` (default pad, unk, bos, eos: a keyboard never suggests <unk>);
        ties go to the lowest id. Each distinct history's distribution is computed once.
        Ratios are nan when their denominator is 0.
        """
        cfg = self.config
        if not k_values:
            raise ValueError("k_values must not be empty")
        k_max = max(self._check_k(k, special_ids) for k in k_values)
        ctx, targets = _positions(examples, cfg)
        uniq, first, inverse = np.unique(encode(ctx, cfg.vocab_size), return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        by_ctx = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_ctx], np.arange(0, uniq.shape[0] + _BATCH, _BATCH))
        target_prob = np.empty(targets.shape[0])
        top = np.empty((uniq.shape[0], k_max), dtype=np.int64)
        specials = self._special_list(special_ids)
        for i, b0 in enumerate(range(0, uniq.shape[0], _BATCH)):
            probs = self._distributions(ctx[first[b0 : b0 + _BATCH]])
            pos = by_ctx[bounds[i] : bounds[i + 1]]
            target_prob[pos] = probs[inverse[pos] - b0, targets[pos]]
            probs[:, specials] = -1.0
            top[b0 : b0 + probs.shape[0]] = top_k_rows(probs, k_max)
        n = int(targets.shape[0])
        in_vocab = targets != cfg.unk_id
        n_iv = int(in_vocab.sum())
        loss = float(-np.log(target_prob).mean()) if n else math.nan
        out: dict[str, float] = {"tokens": n, "oov_targets": n - n_iv}
        hits = {k: (top[inverse, :k] == targets[:, None]).any(axis=1) for k in k_values}
        for k in k_values:
            out[f"recall_at_{k}"] = float(hits[k].sum() / n) if n else math.nan
        for k in k_values:
            out[f"recall_at_{k}_no_oov"] = float(hits[k][in_vocab].sum() / n_iv) if n_iv else math.nan
        out["perplexity"] = math.exp(loss) if n else math.nan
        out["loss"] = loss
        return out

    def _special_list(self, special_ids: Collection[int] | None) -> list[int]:
        cfg = self.config
        if special_ids is None:
            return [cfg.pad_id, cfg.unk_id, cfg.bos_id, cfg.eos_id]
        return sorted({int(s) for s in special_ids})

    def _check_k(self, k: int, special_ids: Collection[int] | None) -> int:
        n_candidates = self.config.vocab_size - len(self._special_list(special_ids))
        if not isinstance(k, int) or not 1 <= k <= n_candidates:
            raise ValueError(f"k must be an int in [1, {n_candidates}], got {k!r}")
        return k

    def save(self, path: Path) -> None:
        """Write one ``.npz`` (no pickle) at exactly ``path``, atomically."""
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "format_version": np.array(_FORMAT_VERSION),
            "config": np.array(json.dumps(dataclasses.asdict(self.config))),
            "discounts": self._discounts,
        }
        for k, (keys, counts) in enumerate(zip(self._keys, self._counts, strict=True), start=1):
            arrays[f"keys_{k}"] = keys
            arrays[f"counts_{k}"] = counts
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> KneserNeyLM:
        """Read a ``save`` file; any missing, corrupt or inconsistent file -> ValueError."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                if int(data["format_version"]) != _FORMAT_VERSION:
                    raise ValueError(f"unsupported format_version {int(data['format_version'])}")
                config = NgramConfig(**json.loads(str(data["config"])))
                keys = [data[f"keys_{k}"].astype(np.int64) for k in range(1, config.order + 1)]
                counts = [data[f"counts_{k}"].astype(np.int64) for k in range(1, config.order + 1)]
                discounts = data["discounts"].astype(np.float64)
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            EOFError,
            zipfile.BadZipFile,
            zlib.error,
        ) as e:
            raise ValueError(f"cannot load n-gram model from {path}: {e}") from e
        if discounts.shape != (config.order, 3) or not np.all((discounts > 0) & (discounts <= [1.0, 2.0, 3.0])):
            raise ValueError(f"cannot load n-gram model from {path}: bad discounts")
        for k, (kk, cc) in enumerate(zip(keys, counts, strict=True), start=1):
            if (
                kk.ndim != 1
                or kk.shape != cc.shape
                or np.any(cc < 1)
                or np.any(np.diff(kk) <= 0)
                or (kk.size and (kk[0] < 0 or kk[-1] >= config.vocab_size**k))
            ):
                raise ValueError(f"cannot load n-gram model from {path}: bad order-{k} arrays")
        return cls(config, keys, counts, discounts)


def _positions(examples: Iterable[npt.ArrayLike], cfg: NgramConfig) -> tuple[IntArray, IntArray]:
    return positions(
        examples,
        order=cfg.order,
        vocab_size=cfg.vocab_size,
        pad_id=cfg.pad_id,
        bos_id=cfg.bos_id,
        eos_id=cfg.eos_id,
    )
