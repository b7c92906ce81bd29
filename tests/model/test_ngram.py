"""Tests for the interpolated modified Kneser-Ney baseline (model/ngram.py).

Vocabulary used throughout: pad=0, unk=1, bos=2, eos=3 and words a..d = 4..7, so
vocab_size=8 and the target vocabulary V' = {unk, a, b, c, d} has 5 ids.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from model.ngram import KneserNeyLM, NgramConfig

PAD, UNK, BOS, EOS = 0, 1, 2, 3
A, B, C, D = 4, 5, 6, 7
V = 8
FALLBACK = (0.5, 1.0, 1.5)  # KenLM-style discounts when count-of-counts are degenerate


def _ex(*ids: int) -> np.ndarray:
    return np.array(ids, dtype=np.int64)


def _fit(examples: list[np.ndarray], order: int, vocab_size: int = V) -> KneserNeyLM:
    return KneserNeyLM.fit(examples, NgramConfig(order=order, vocab_size=vocab_size))


def _random_corpus(seed: int, n: int = 40, vocab_size: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    words = np.array([UNK, *range(4, vocab_size)])
    return [rng.choice(words[: rng.integers(3, len(words) + 1)], size=rng.integers(0, 9)) for _ in range(n)]


# ---- exact Kneser-Ney numbers ----------------------------------------------------------
#
# Interpolated modified KN (Chen & Goodman 1998), for order k with context h:
#   p_k(w|h)   = (c_k(hw) - D_k(c_k(hw))) / c_k(h.) + gamma_k(h) * p_{k-1}(w|h')
#   gamma_k(h) = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3+ N3+(h.)) / c_k(h.)
# c is the raw count at the highest order and the continuation count N1+(. h w) below it;
# an unseen context backs off entirely: p_k(w|h) = p_{k-1}(w|h'); p_0 = 1/|V'| = 1/5.
# Discounts: Y = n1/(n1+2n2), D1 = 1-2Y n2/n1, D2 = 2-3Y n3/n2, D3+ = 3-4Y n4/n3, or
# (0.5, 1, 1.5) when some n_r (r=1..4) is 0.

_CORPUS_2 = [
    _ex(A, B, A, B), _ex(A, B), _ex(A, B), _ex(A, C),
    _ex(C, D), _ex(C, D), _ex(C, D), _ex(B), _ex(D, A), _ex(D, A),
]  # fmt: skip


def test_fit_order2_matches_hand_computed_kn() -> None:
    # Bigram counts: (bos,a)=4 (a,b)=4 (bos,c)=3 (c,d)=3 (bos,d)=2 (d,a)=2 (b,a)=1 (a,c)=1
    # (bos,b)=1 -> n1=3, n2=2, n3=2, n4=2: the Chen & Goodman estimate applies.
    y = 3 / (3 + 2 * 2)
    d1, d2, d3 = 1 - 2 * y * 2 / 3, 2 - 3 * y * 2 / 2, 3 - 4 * y * 2 / 2
    # Unigram continuation counts (distinct left neighbours): a {bos,b,d}=3, b {bos,a}=2,
    # c {bos,a}=2, d {bos,c}=2, unk 0; total 9; n1=0 -> fallback discounts.
    g1 = (1.0 * 3 + 1.5 * 1) / 9
    p1 = {A: (3 - 1.5) / 9 + g1 / 5, B: (2 - 1.0) / 9 + g1 / 5, UNK: g1 / 5}
    p1[C] = p1[D] = p1[B]

    model = _fit(_CORPUS_2, order=2)

    np.testing.assert_allclose(model.discounts, [FALLBACK, (d1, d2, d3)], rtol=0, atol=1e-12)
    g_a = (d3 * 1 + d1 * 1) / 5  # context a: (a,b)=4, (a,c)=1
    g_d = d2 / 2  # context d: (d,a)=2
    g_bos = (d3 * 2 + d2 * 1 + d1 * 1) / 10  # context bos: 4, 3, 2, 1
    expected = [
        ([A], B, (4 - d3) / 5 + g_a * p1[B]),
        ([A], C, (1 - d1) / 5 + g_a * p1[C]),
        ([A], D, g_a * p1[D]),
        ([D], A, (2 - d2) / 2 + g_d * p1[A]),
        ([D], UNK, g_d * p1[UNK]),
        ([], C, (3 - d3) / 10 + g_bos * p1[C]),
        ([B, UNK], A, p1[A]),  # context unk never seen -> unigram level
    ]
    for history, word, prob in expected:
        assert model.next_word_probs(history)[word] == pytest.approx(prob, abs=1e-12)


def test_fit_order3_matches_hand_computed_kn() -> None:
    # Trigrams: (bos,bos,a)=2 (bos,a,b)=2 (a,b,c)=1 (a,b,d)=1 (bos,bos,b)=1 (bos,b,c)=1.
    # Bigram continuation counts: (b,c)=2 [left a, bos], (bos,a)=(a,b)=(b,d)=(bos,b)=1.
    # Unigram continuation counts over bigram types: a=1, b=2 [left a, bos], c=1, d=1.
    # Every order has some n_r = 0, so all use (D1, D2, D3+) = (0.5, 1, 1.5).
    model = _fit([_ex(A, B, C), _ex(A, B, D), _ex(B, C)], order=3)
    d1, d2 = 0.5, 1.0
    g1 = (d1 * 3 + d2 * 1) / 5
    p1 = {A: (1 - d1) / 5 + g1 / 5, B: (2 - d2) / 5 + g1 / 5, C: (1 - d1) / 5 + g1 / 5}
    p1[D], p1[UNK] = p1[C], g1 / 5
    g2_b = (d2 + d1) / 3  # bigram context b: (b,c)=2, (b,d)=1
    p2_b = {
        C: (2 - d2) / 3 + g2_b * p1[C],
        D: (1 - d1) / 3 + g2_b * p1[D],
        A: g2_b * p1[A],
    }
    g2_bos = (d1 + d1) / 2  # bigram context bos: (bos,a)=1, (bos,b)=1
    p2_bos_a = (1 - d1) / 2 + g2_bos * p1[A]
    g3_ab = (d1 + d1) / 2  # trigram context (a,b): c=1, d=1
    g3_bosbos = (d2 + d1) / 3  # trigram context (bos,bos): a=2, b=1
    g3_bosb = d1 / 1  # trigram context (bos,b): c=1

    np.testing.assert_allclose(model.discounts, [FALLBACK] * 3, rtol=0, atol=0)
    expected = [
        ([A, B], C, (1 - d1) / 2 + g3_ab * p2_b[C]),
        ([A, B], D, (1 - d1) / 2 + g3_ab * p2_b[D]),
        ([A, B], A, g3_ab * p2_b[A]),
        ([], A, (2 - d2) / 3 + g3_bosbos * p2_bos_a),
        ([B], C, (1 - d1) / 1 + g3_bosb * p2_b[C]),
        ([C], B, p1[B]),  # neither (bos,c) nor c was ever a context -> unigram level
        ([D, D, C], UNK, p1[UNK]),
    ]
    for history, word, prob in expected:
        assert model.next_word_probs(history)[word] == pytest.approx(prob, abs=1e-12)


def test_fit_order1_is_history_independent_discounted_unigram() -> None:
    model = _fit([_ex(A, A, A, B), _ex(A, C)], order=1)  # counts a=4, b=1, c=1 (fallback D)
    g = (1.5 + 0.5 + 0.5) / 6
    probs = model.next_word_probs([B, C])
    assert probs[A] == pytest.approx((4 - 1.5) / 6 + g / 5, abs=1e-12)
    assert probs[D] == pytest.approx(g / 5, abs=1e-12)
    np.testing.assert_array_equal(probs, model.next_word_probs([]))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert list(model.top_k([], 2)) == [A, B]


# ---- distribution properties -----------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_next_word_probs_normalized_nonnegative_zero_on_pad_bos_eos(order: int) -> None:
    model = _fit(_random_corpus(seed=order), order=order, vocab_size=12)
    histories = [
        [],
        [4],
        [4, 5],
        [5, 4, 6],
        [11, 11, 11],
        [UNK, 9],
        [PAD, EOS],
        [BOS, 4],
    ]
    for history in histories:
        probs = model.next_word_probs(history)
        assert probs.shape == (12,) and probs.dtype == np.float64
        assert probs.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_array_equal(probs[[PAD, BOS, EOS]], 0.0)
        keep = np.ones(12, dtype=bool)
        keep[[PAD, BOS, EOS]] = False
        assert np.all(probs[keep] > 0.0)  # unk and never-seen words included


def test_next_word_probs_unseen_word_gets_uniform_floor_mass() -> None:
    model = _fit([_ex(A, B)], order=2)  # c, d, unk never seen anywhere
    probs = model.next_word_probs([A])
    assert probs[C] == probs[D] == probs[UNK] > 0.0


def test_next_word_probs_out_of_range_history_raises() -> None:
    with pytest.raises(ValueError, match="got \\[4, 8\\]"):
        _fit([_ex(A)], order=2).next_word_probs([A, 8])


def test_fit_empty_corpus_is_uniform_over_target_vocab() -> None:
    probs = _fit([], order=3).next_word_probs([A])
    np.testing.assert_allclose(probs, [0, 0.2, 0, 0, 0.2, 0.2, 0.2, 0.2], rtol=0, atol=1e-15)


def test_fit_trailing_pad_is_stripped() -> None:
    padded = _fit([_ex(A, B, PAD, PAD), _ex(C, PAD), _ex(PAD)], order=2)
    plain = _fit([_ex(A, B), _ex(C)], order=2)
    for history in ([], [A], [C]):
        np.testing.assert_array_equal(padded.next_word_probs(history), plain.next_word_probs(history))


@pytest.mark.parametrize("bad", [_ex(A, BOS, B), _ex(A, PAD, B), _ex(A, EOS), _ex(A, 8), _ex(-1)])
def test_fit_non_target_id_inside_example_raises(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="example 1 has id"):
        _fit([_ex(A), bad], order=2)


def test_fit_float_example_raises() -> None:
    with pytest.raises(ValueError, match="example 0 must be a 1-D int array"):
        _fit([np.array([4.0, 5.0])], order=2)


# ---- top-k and evaluation --------------------------------------------------------------


def test_top_k_never_contains_specials() -> None:
    model = _fit([_ex(A, UNK)] * 5 + [_ex(A, B)], order=2)
    assert int(np.argmax(model.next_word_probs([A]))) == UNK  # unk is the likeliest word...
    top = model.top_k([A], 5 - 1)
    assert UNK not in top and not {PAD, BOS, EOS} & set(top.tolist())  # ...but never shown
    assert top[0] == B


def test_top_k_ties_break_to_lowest_id() -> None:
    model = _fit([], order=2)  # uniform: every candidate ties
    assert model.top_k([A], 3).tolist() == [A, B, C]


def test_top_k_k_larger_than_candidates_raises() -> None:
    with pytest.raises(ValueError, match="got 5"):
        _fit([], order=2).top_k([], 5)  # only a..d are suggestible


def test_evaluate_returns_exactly_the_documented_keys() -> None:
    metrics = _fit([_ex(A, B)], order=2).evaluate([_ex(A, B)])
    assert list(metrics) == [
        "tokens", "oov_targets", "recall_at_1", "recall_at_3",
        "recall_at_1_no_oov", "recall_at_3_no_oov", "perplexity", "loss",
    ]  # fmt: skip
    assert isinstance(metrics["tokens"], int) and isinstance(metrics["oov_targets"], int)


def test_evaluate_unk_target_is_a_miss_and_dropped_from_no_oov() -> None:
    model = _fit([_ex(A, UNK)] * 5 + [_ex(A, B)], order=2)
    metrics = model.evaluate([_ex(A, UNK), _ex(A, B)])  # unk is p-argmax after a, a miss
    assert metrics["tokens"] == 4
    assert metrics["oov_targets"] == 1
    assert metrics["recall_at_1"] == 3 / 4  # a, a, b hit; unk missed
    assert metrics["recall_at_3"] == 3 / 4
    assert metrics["recall_at_1_no_oov"] == 1.0
    assert metrics["recall_at_3_no_oov"] == 1.0
    nll = [-math.log(model.next_word_probs(h)[t]) for h, t in [([], A), ([A], UNK), ([], A), ([A], B)]]
    assert metrics["loss"] == pytest.approx(sum(nll) / 4, abs=1e-12)  # unk included
    assert metrics["perplexity"] == pytest.approx(math.exp(sum(nll) / 4), rel=1e-12)


def test_evaluate_uniform_model_perplexity_is_target_vocab_size() -> None:
    metrics = _fit([], order=3).evaluate([_ex(A, B, UNK), _ex(D)])
    assert metrics["perplexity"] == pytest.approx(5.0, rel=1e-12)  # |V'| = 8 - 3
    assert metrics["loss"] == pytest.approx(math.log(5.0), rel=1e-12)
    assert metrics["recall_at_1"] == 1 / 4  # ties -> suggests a (lowest id) everywhere


def test_evaluate_repeated_corpus_recall_at_1_is_one() -> None:
    corpus = [_ex(A, B, C, D, A, C)] * 20
    for order in (2, 3):
        metrics = _fit(corpus, order=order).evaluate(corpus[:1])
        if order == 3:  # a->b and a->c are ambiguous for bigrams; trigrams disambiguate
            assert metrics["recall_at_1"] == 1.0
        assert metrics["recall_at_3"] == 1.0


@pytest.mark.parametrize("order", [1, 2, 3])
def test_evaluate_matches_per_position_reference(order: int) -> None:
    train, test = _random_corpus(seed=10 + order), _random_corpus(seed=20 + order, n=25)
    model = _fit(train, order=order, vocab_size=12)
    specials = [PAD, UNK, BOS, EOS]
    hits: dict[int, list[bool]] = {1: [], 5: []}
    nll: list[float] = []
    oov: list[bool] = []
    for example in test:
        for i, target in enumerate(example.tolist()):
            probs = model.next_word_probs(example[:i].tolist())
            nll.append(-math.log(probs[target]))
            oov.append(target == UNK)
            probs[specials] = -np.inf
            ranking = np.argsort(-probs, kind="stable")  # lowest id first among ties
            for k, hit in hits.items():
                hit.append(target in ranking[:k])
    metrics = model.evaluate(test, k_values=(1, 5))
    n, iv = len(nll), ~np.array(oov)
    assert metrics["tokens"] == n and metrics["oov_targets"] == sum(oov)
    for k, h in hits.items():
        assert metrics[f"recall_at_{k}"] == pytest.approx(sum(h) / n, abs=1e-12)
        assert metrics[f"recall_at_{k}_no_oov"] == pytest.approx(np.array(h)[iv].mean(), abs=1e-12)
    assert metrics["loss"] == pytest.approx(np.mean(nll), abs=1e-12)


def test_evaluate_no_positions_gives_nan_ratios() -> None:
    metrics = _fit([_ex(A)], order=2).evaluate([_ex()])
    assert metrics["tokens"] == 0 and math.isnan(metrics["recall_at_1"])
    assert math.isnan(metrics["perplexity"])


# ---- persistence ------------------------------------------------------------------------


def test_save_load_round_trip_identical_probabilities(tmp_path: Path) -> None:
    model = _fit(_random_corpus(seed=3), order=3, vocab_size=12)
    path = tmp_path / "kn.npz"
    model.save(path)
    loaded = KneserNeyLM.load(path)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.discounts, model.discounts)
    for history in ([], [4], [5, 6], [UNK, 11, 4]):
        np.testing.assert_array_equal(loaded.next_word_probs(history), model.next_word_probs(history))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kn.npz"]  # exact name, no .tmp left


def test_load_missing_file_raises_value_error_naming_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.npz"
    with pytest.raises(ValueError, match=re.escape(str(path))):
        KneserNeyLM.load(path)


def test_load_corrupt_file_raises_value_error_naming_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    truncated = tmp_path / "truncated.npz"
    _fit(_random_corpus(seed=4), order=2, vocab_size=12).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    for path in (garbage, other, truncated):
        with pytest.raises(ValueError, match=re.escape(str(path))):
            KneserNeyLM.load(path)


# ---- config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": 0, "vocab_size": 8}, "got 0"),
        ({"vocab_size": 4}, "got 4"),
        ({"vocab_size": 8, "unk_id": 9}, "unk_id must be in [0, 8), got 9"),
        ({"vocab_size": 8, "bos_id": 0}, "got (0, 1, 0, 3)"),
        ({"order": 5, "vocab_size": 10_000}, "vocab_size=10000, order=5"),
    ],
)
def test_config_invalid_value_raises_naming_it(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        NgramConfig(**kwargs)
