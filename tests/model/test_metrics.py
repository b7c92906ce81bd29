"""Tests for the keyboard metrics (model/metrics.py).

Hand-built case, vocabulary pad=0, unk=1, bos=2, eos=3 and words 4..7 (V=8), two rows
of three targets:

    row 0: target 5  ranking of words 5,4,6,7 (bos and unk above all)  -> hit @1, hit @3
           target 6  ranking of words 4,7,6,5 (eos and pad above all)  -> miss @1, hit @3
           padding   (pad has the top logit)                           -> never counts
    row 1: target 7  ranking of words 4,5,6,7                          -> miss @1, miss @3
           target unk (unk has the top logit)                          -> miss, or left out
           target 4  ranking of words 4,...                            -> hit @1, hit @3

5 counted targets, 1 of them <unk>: recall@1 = 2/5, recall@3 = 3/5,
recall@1_no_oov = 2/4, recall@3_no_oov = 3/4, tokens = 5, oov_targets = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from model.config import ModelConfig
from model.metrics import (
    Perplexity,
    RecallAtK,
    TokenCount,
    keyboard_metrics,
    mask_special_logits,
    target_rank,
    top_k_words,
)

PAD, UNK, BOS, EOS = 0, 1, 2, 3
V = 8
SPECIALS = (PAD, UNK, BOS, EOS)
CONFIG = ModelConfig(vocab_size=V, embedding_dim=4, units=4)
NAMES = [
    "recall_at_1",
    "recall_at_3",
    "recall_at_1_no_oov",
    "recall_at_3_no_oov",
    "perplexity",
    "tokens",
    "oov_targets",
]


def _row(**by_id: float) -> list[float]:
    logits = [0.0] * V
    for key, value in by_id.items():
        logits[int(key[1:])] = value
    return logits


TARGETS = np.array([[5, 6, PAD], [7, UNK, 4]], dtype=np.int32)
LOGITS = np.array(
    [
        [
            _row(i2=10.0, i1=9.0, i5=5.0, i4=4.0, i6=3.0, i7=2.0),
            _row(i3=8.0, i0=7.0, i4=5.0, i7=4.0, i6=3.0, i5=2.0),
            _row(i0=20.0, i4=1.0),
        ],
        [
            _row(i4=4.0, i5=3.0, i6=2.0, i7=1.0),
            _row(i1=100.0, i6=2.0, i5=1.5),
            _row(i4=6.0, i5=1.0, i2=7.0),
        ],
    ],
    dtype=np.float32,
)


def _value(metric: tf.keras.metrics.Metric, targets: np.ndarray = TARGETS, logits: np.ndarray = LOGITS) -> float:
    metric.update_state(targets, logits)
    return float(metric.result())


def _numpy_nll(targets: np.ndarray, logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


# ---- exact numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "exclude_oov", "want"),
    [(1, False, 2 / 5), (3, False, 3 / 5), (1, True, 2 / 4), (3, True, 3 / 4)],
)
def test_recall_at_k_hand_built(k: int, exclude_oov: bool, want: float) -> None:
    metric = RecallAtK(k, SPECIALS, pad_id=PAD, unk_id=UNK, exclude_oov=exclude_oov)
    assert _value(metric) == pytest.approx(want, abs=1e-12)


def test_recall_at_k_hand_built_counts() -> None:
    metric = RecallAtK(3, SPECIALS, pad_id=PAD, unk_id=UNK)
    metric.update_state(TARGETS, LOGITS)
    assert (float(metric.numerator), float(metric.denominator)) == (3.0, 5.0)


def test_recall_at_k_special_with_top_logit_not_a_hit() -> None:
    # Target bos with bos on top: specials are never suggested, so this is a miss.
    targets = np.array([[BOS]], dtype=np.int32)
    logits = np.array([[_row(i2=9.0, i4=1.0)]], dtype=np.float32)
    for k in (1, 3):
        assert _value(RecallAtK(k, SPECIALS, pad_id=PAD, unk_id=UNK), targets, logits) == 0.0


def test_recall_at_k_specials_take_no_slot() -> None:
    # Target 7 is the 3rd best word but only 7th overall: every special ranks above it.
    targets = np.array([[7]], dtype=np.int32)
    logits = np.array([[_row(i0=9.0, i1=8.0, i2=7.0, i3=6.0, i4=5.0, i5=4.0, i7=3.0, i6=2.0)]], np.float32)
    assert _value(RecallAtK(3, SPECIALS, pad_id=PAD, unk_id=UNK), targets, logits) == 1.0
    assert _value(RecallAtK(2, SPECIALS, pad_id=PAD, unk_id=UNK), targets, logits) == 0.0


def test_recall_at_k_unk_target_with_top_logit_is_miss() -> None:
    targets = np.array([[UNK, 4]], dtype=np.int32)
    logits = np.array([[_row(i1=50.0, i4=1.0), _row(i4=1.0)]], dtype=np.float32)
    assert _value(RecallAtK(1, SPECIALS, pad_id=PAD, unk_id=UNK), targets, logits) == 0.5
    assert _value(RecallAtK(1, SPECIALS, pad_id=PAD, unk_id=UNK, exclude_oov=True), targets, logits) == 1.0


def test_recall_at_k_padding_never_counts() -> None:
    targets = np.array([[4, PAD, PAD]], dtype=np.int32)
    logits = np.array([[_row(i5=1.0), _row(i0=9.0), _row(i4=9.0)]], dtype=np.float32)
    metric = RecallAtK(1, SPECIALS, pad_id=PAD, unk_id=UNK)
    assert _value(metric, targets, logits) == 0.0
    assert float(metric.denominator) == 1.0


def test_recall_at_k_all_padding_gives_zero_not_nan() -> None:
    metric = RecallAtK(1, SPECIALS, pad_id=PAD, unk_id=UNK)
    assert _value(metric, np.zeros((2, 3), np.int32), LOGITS) == 0.0


@pytest.mark.parametrize("k", [0, -1])
def test_recall_at_k_nonpositive_k_rejected(k: int) -> None:
    with pytest.raises(ValueError, match=f"got {k}"):
        RecallAtK(k, SPECIALS, pad_id=PAD, unk_id=UNK)


def test_recall_at_k_default_names() -> None:
    assert RecallAtK(3, SPECIALS, pad_id=PAD, unk_id=UNK).name == "recall_at_3"
    assert RecallAtK(1, SPECIALS, pad_id=PAD, unk_id=UNK, exclude_oov=True).name == "recall_at_1_no_oov"


def test_perplexity_equals_exp_mean_nll() -> None:
    nll = _numpy_nll(TARGETS, LOGITS)
    mask = TARGETS != PAD
    want = math.exp(nll[mask].mean())
    got = _value(Perplexity(pad_id=PAD, unk_id=UNK))
    assert got == pytest.approx(want, rel=1e-5)
    # Counting the padded position (NLL near 0: pad has the top logit there) would lower it.
    assert want != pytest.approx(math.exp(nll.mean()), rel=1e-3)


def test_perplexity_uniform_logits_is_vocab_size() -> None:
    targets = np.array([[4, 5, PAD]], dtype=np.int32)
    got = _value(Perplexity(pad_id=PAD, unk_id=UNK), targets, np.zeros((1, 3, V), np.float32))
    assert got == pytest.approx(V, rel=1e-6)


def test_token_count_tokens_and_oov() -> None:
    assert _value(TokenCount(pad_id=PAD, unk_id=UNK)) == 5.0
    assert _value(TokenCount(pad_id=PAD, unk_id=UNK, oov=True)) == 1.0


def test_token_count_names() -> None:
    assert TokenCount(pad_id=PAD, unk_id=UNK).name == "tokens"
    assert TokenCount(pad_id=PAD, unk_id=UNK, oov=True).name == "oov_targets"


def test_metric_reset_state_clears_sums() -> None:
    for metric in keyboard_metrics(CONFIG):
        metric.update_state(TARGETS, LOGITS)
        metric.reset_state()
        assert float(metric.numerator) == 0.0
        assert float(metric.denominator) == 0.0


# ---- keyboard_metrics --------------------------------------------------------------------


def test_keyboard_metrics_names() -> None:
    assert [m.name for m in keyboard_metrics(CONFIG)] == NAMES


def test_keyboard_metrics_hand_built_values() -> None:
    nll = _numpy_nll(TARGETS, LOGITS)
    want = {
        "recall_at_1": 2 / 5,
        "recall_at_3": 3 / 5,
        "recall_at_1_no_oov": 2 / 4,
        "recall_at_3_no_oov": 3 / 4,
        "perplexity": math.exp(nll[TARGETS != PAD].mean()),
        "tokens": 5.0,
        "oov_targets": 1.0,
    }
    got = {m.name: _value(m) for m in keyboard_metrics(CONFIG)}
    assert got == pytest.approx(want, rel=1e-5)


def test_keyboard_metrics_follow_config_special_ids() -> None:
    # Shift the specials: pad=7, unk=6, bos=5, eos=4, words 0..3.
    config = ModelConfig(vocab_size=V, embedding_dim=4, units=4, pad_id=7, unk_id=6, bos_id=5, eos_id=4)
    targets = np.array([[0, 6, 7]], dtype=np.int32)
    logits = np.array([[_row(i5=9.0, i0=1.0), _row(i6=9.0), _row(i7=9.0)]], dtype=np.float32)
    got = {m.name: _value(m, targets, logits) for m in keyboard_metrics(config)}
    assert got["recall_at_1"] == 0.5
    assert got["recall_at_1_no_oov"] == 1.0
    assert got["tokens"] == 2.0
    assert got["oov_targets"] == 1.0


def test_keyboard_metrics_fresh_instances() -> None:
    first, second = keyboard_metrics(CONFIG), keyboard_metrics(CONFIG)
    first[0].update_state(TARGETS, LOGITS)
    assert float(second[0].denominator) == 0.0


def test_keyboard_metrics_state_sums_across_updates() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, V, size=(6, 5)).astype(np.int32)
    logits = rng.normal(size=(6, 5, V)).astype(np.float32)
    split = keyboard_metrics(CONFIG)
    whole = keyboard_metrics(CONFIG)
    for metric in split:
        metric.update_state(targets[:2], logits[:2])
        metric.update_state(targets[2:], logits[2:])
    for metric in whole:
        metric.update_state(targets, logits)
    for a, b in zip(split, whole, strict=True):
        assert float(a.numerator) == pytest.approx(float(b.numerator), rel=1e-9), a.name
        assert float(a.denominator) == float(b.denominator), a.name
        assert float(a.result()) == pytest.approx(float(b.result()), rel=1e-9), a.name
    # Sanity: the random batch has padding, unk targets and hits, so every sum is exercised.
    assert 0 < float(whole[NAMES.index("tokens")].result()) < targets.size
    assert float(whole[NAMES.index("oov_targets")].result()) > 0


@pytest.mark.parametrize("index", range(len(NAMES)))
def test_metric_get_config_round_trip(index: int) -> None:
    config = ModelConfig(vocab_size=V, embedding_dim=4, units=4, pad_id=7, unk_id=6, bos_id=5, eos_id=4)
    metric = keyboard_metrics(config)[index]
    clone = type(metric).from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    assert (clone.name, clone.pad_id, clone.unk_id) == (NAMES[index], 7, 6)
    rng = np.random.default_rng(index)
    targets = rng.integers(0, V, size=(3, 4)).astype(np.int32)
    logits = rng.normal(size=(3, 4, V)).astype(np.float32)
    assert _value(clone, targets, logits) == pytest.approx(_value(metric, targets, logits), rel=1e-9)


def test_recall_at_k_get_config_fields() -> None:
    config = RecallAtK(3, SPECIALS, pad_id=PAD, unk_id=UNK, exclude_oov=True).get_config()
    assert (config["k"], config["special_ids"], config["exclude_oov"]) == (3, [0, 1, 2, 3], True)


# ---- ranking helpers ---------------------------------------------------------------------


def test_top_k_words_hand_built() -> None:
    top = top_k_words(LOGITS, 3, SPECIALS)
    assert top.shape == (2, 3, 3)
    np.testing.assert_array_equal(top[0, 0], [5, 4, 6])
    np.testing.assert_array_equal(top[0, 1], [4, 7, 6])
    np.testing.assert_array_equal(top[1, 0], [4, 5, 6])


def test_top_k_words_ties_lower_id_first() -> None:
    np.testing.assert_array_equal(top_k_words(np.zeros(V), 4, SPECIALS), [4, 5, 6, 7])


def test_top_k_words_does_not_modify_input() -> None:
    logits = LOGITS.copy()
    top_k_words(logits, 2, SPECIALS)
    np.testing.assert_array_equal(logits, LOGITS)


@pytest.mark.parametrize("k", [1, 3])
def test_top_k_words_agrees_with_recall_at_k(k: int) -> None:
    rng = np.random.default_rng(k)
    vocab = 40
    logits = rng.normal(size=(8, 6, vocab)).astype(np.float32)
    logits[..., BOS] += 5.0  # a special often on top: must be skipped by both
    # Targets among the 5 best words, by logit: some within the top k, some beyond.
    by_logit = np.argsort(-np.where(np.arange(vocab) < 4, -np.inf, logits), axis=-1)[..., :5]
    ranks = rng.integers(0, 5, size=(8, 6, 1))
    targets = np.take_along_axis(by_logit, ranks, axis=-1)[..., 0].astype(np.int32)
    top = top_k_words(logits, k, SPECIALS)
    assert not np.isin(top, SPECIALS).any()
    hits = (top == targets[..., None]).any(axis=-1).sum()
    metric = RecallAtK(k, SPECIALS, pad_id=PAD, unk_id=UNK)
    metric.update_state(targets, logits)
    assert float(metric.numerator) == hits
    assert hits == (ranks < k).sum()
    assert 0 < hits < targets.size
    # Position-wise: the tf ranking is the numpy ranking.
    tf_top = tf.math.top_k(mask_special_logits(tf.constant(logits), SPECIALS), k=k).indices.numpy()
    np.testing.assert_array_equal(tf_top, top)


def test_mask_special_logits_only_specials_pushed_down() -> None:
    logits = tf.constant(LOGITS)
    masked = mask_special_logits(logits, SPECIALS).numpy()
    np.testing.assert_array_equal(masked[..., 4:], LOGITS[..., 4:])
    assert (masked[..., :4] < LOGITS[..., 4:].min() - 1e6).all()


def test_recall_at_k_ties_go_to_lower_id() -> None:
    # All words tie: the ranking is 4, 5, 6, 7, so only target 4 is a hit @1, and 4..6 @3.
    targets = np.array([[4, 5, 6, 7]], dtype=np.int32)
    logits = np.zeros((1, 4, V), np.float32)
    logits[..., BOS] = 3.0
    assert _value(RecallAtK(1, SPECIALS, pad_id=PAD, unk_id=UNK), targets, logits) == 0.25
    assert _value(RecallAtK(3, SPECIALS, pad_id=PAD, unk_id=UNK), targets, logits) == 0.75


def test_target_rank_agrees_with_top_k_words() -> None:
    rng = np.random.default_rng(4)
    vocab = 12
    # Coarse logits so that ties are common.
    logits = rng.integers(-2, 3, size=(3, 5, vocab)).astype(np.float32)
    targets = rng.integers(4, vocab, size=(3, 5)).astype(np.int32)
    ranking = top_k_words(logits, vocab - len(SPECIALS), SPECIALS)  # (3, 5, 8) all words
    want = np.argmax(ranking == targets[..., None], axis=-1)
    got = target_rank(tf.constant(logits), tf.constant(targets), SPECIALS).numpy()
    np.testing.assert_array_equal(got, want)
