"""Tests for the tied-embedding keyboard model and its loss (model/keras_model.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf

from model.config import ModelConfig
from model.keras_model import MaskedCrossEntropy, TiedEmbedding, build_model

V = 30
CONFIG = ModelConfig.from_preset("tiny", vocab_size=V)
D, U = CONFIG.embedding_dim, CONFIG.units
B, T = 2, 5


def _ids(batch: int = B, length: int = T, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, size=(batch, length)).astype(np.int32)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _canonical(name: str) -> str:
    """A variable name without Keras's per-process uniquifying suffix on the cell scope."""
    return re.sub(r"(cifg_cell|lstm_cell)_\d+", r"\1", name)


@pytest.fixture(scope="module")
def cifg_model() -> tf.keras.Model:
    return build_model(CONFIG, seed=0)


@pytest.fixture(scope="module")
def lstm_model() -> tf.keras.Model:
    return build_model(ModelConfig.from_preset("tiny", vocab_size=V, cell="lstm"), seed=0)


@pytest.fixture(scope="module")
def unrolled_model() -> tf.keras.Model:
    return build_model(CONFIG, seed=5, unroll=True, batch_size=B, seq_len=T)


# ---- shapes and cells ------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "length"), [(2, 5), (3, 1), (1, 9)])
def test_build_model_logits_shape_dynamic(cifg_model: tf.keras.Model, batch: int, length: int) -> None:
    logits = cifg_model(_ids(batch, length))
    assert tuple(logits.shape) == (batch, length, V)
    assert logits.dtype == tf.float32


def test_build_model_cifg_variables(cifg_model: tf.keras.Model) -> None:
    shapes = [(_canonical(w.name), tuple(w.shape)) for w in cifg_model.weights]
    assert shapes == [
        ("embedding/embeddings:0", (V, D)),
        ("embedding/output_bias:0", (V,)),
        ("rnn_0/cifg_cell/kernel:0", (D, 3 * U)),
        ("rnn_0/cifg_cell/recurrent_kernel:0", (U, 3 * U)),
        ("rnn_0/cifg_cell/bias:0", (3 * U,)),
        ("projection/kernel:0", (U, D)),
    ]
    assert cifg_model.name == "keyboard_cifg"


def test_build_model_lstm_variables_and_shape(lstm_model: tf.keras.Model) -> None:
    shapes = [(_canonical(w.name), tuple(w.shape)) for w in lstm_model.weights]
    assert shapes == [
        ("embedding/embeddings:0", (V, D)),
        ("embedding/output_bias:0", (V,)),
        ("rnn_0/lstm_cell/kernel:0", (D, 4 * U)),
        ("rnn_0/lstm_cell/recurrent_kernel:0", (U, 4 * U)),
        ("rnn_0/lstm_cell/bias:0", (4 * U,)),
        ("projection/kernel:0", (U, D)),
    ]
    assert lstm_model.name == "keyboard_lstm"
    assert tuple(lstm_model(_ids()).shape) == (B, T, V)


def test_build_model_two_layers_stack() -> None:
    config = ModelConfig.from_preset("tiny", vocab_size=V, num_layers=2, units=8)
    model = build_model(config, seed=0)
    names = [_canonical(w.name) for w in model.weights]
    assert [n for n in names if n.endswith("/kernel:0")] == [
        "rnn_0/cifg_cell/kernel:0",
        "rnn_1/cifg_cell/kernel:0",
        "projection/kernel:0",
    ]
    assert tuple(model.get_layer("rnn_1").cell.kernel.shape) == (8, 24)
    assert tuple(model(_ids()).shape) == (B, T, V)


def test_build_model_initial_logits_near_uniform(cifg_model: tf.keras.Model) -> None:
    # Small initial embeddings and a zero output bias: no word starts out strongly preferred.
    probs = tf.nn.softmax(cifg_model(_ids())).numpy()
    np.testing.assert_allclose(probs, 1.0 / V, rtol=0.2)


# ---- tied embeddings ---------------------------------------------------------------------


def test_tied_embedding_single_vocab_matrix(cifg_model: tf.keras.Model) -> None:
    vocab_matrices = [w for w in cifg_model.weights if tuple(w.shape) == (V, D)]
    assert len(vocab_matrices) == 1
    assert sum(1 for w in cifg_model.weights if w.shape[0] == V) == 2  # the matrix and the output bias


def test_tied_embedding_logits_use_input_matrix(cifg_model: tf.keras.Model) -> None:
    (embeddings,) = [w.numpy() for w in cifg_model.weights if tuple(w.shape) == (V, D)]
    bias = cifg_model.get_layer("embedding").output_bias.numpy()
    ids = _ids(seed=3)
    embedding_layer = cifg_model.get_layer("embedding")
    lookup = tf.keras.Model(cifg_model.input, embedding_layer.get_output_at(0))(ids).numpy()
    projected = tf.keras.Model(cifg_model.input, cifg_model.get_layer("projection").output)(ids).numpy()
    np.testing.assert_array_equal(lookup, embeddings[ids])
    np.testing.assert_allclose(cifg_model(ids).numpy(), projected @ embeddings.T + bias, rtol=1e-5, atol=1e-6)


def test_tied_embedding_bias_shifts_logits() -> None:
    layer = TiedEmbedding(6, 3, seed=0)
    layer.build(tf.TensorShape([None, None]))
    layer.output_bias.assign(np.arange(6, dtype=np.float32))
    x = np.random.default_rng(0).normal(size=(1, 2, 3)).astype(np.float32)
    got = layer(x, transpose=True).numpy()
    want = x @ layer.embeddings.numpy().T + np.arange(6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_tied_embedding_get_config_round_trip() -> None:
    layer = TiedEmbedding(12, 4, seed=9, name="emb")
    clone = TiedEmbedding.from_config(layer.get_config())
    assert (clone.vocab_size, clone.dim, clone.seed, clone.name) == (12, 4, 9, "emb")


# ---- seeds -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["cifg", "lstm"])
def test_build_model_same_seed_identical_weights(cell: str) -> None:
    config = ModelConfig.from_preset("tiny", vocab_size=V, cell=cell)
    a = build_model(config, seed=4).get_weights()
    b = build_model(config, seed=4).get_weights()
    c = build_model(config, seed=5).get_weights()
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    # Embedding, kernel, recurrent kernel and projection are random; the biases are constants.
    for i in (0, 2, 3, 5):
        assert not np.array_equal(a[i], c[i]), f"weight {i} did not change with the seed"
    for i in (1, 4):
        np.testing.assert_array_equal(a[i], c[i])


# ---- unrolled fixed-shape build --------------------------------------------------------


def test_build_model_unrolled_same_variables_as_dynamic(
    cifg_model: tf.keras.Model, unrolled_model: tf.keras.Model
) -> None:
    dynamic = [(_canonical(w.name), tuple(w.shape)) for w in cifg_model.weights]
    unrolled = [(_canonical(w.name), tuple(w.shape)) for w in unrolled_model.weights]
    assert unrolled == dynamic
    assert tuple(unrolled_model.input_shape) == (B, T)
    assert unrolled_model.get_layer("rnn_0").unroll is True


def test_build_model_unrolled_same_logits_for_same_weights(
    cifg_model: tf.keras.Model, unrolled_model: tf.keras.Model
) -> None:
    ids = _ids(seed=8)
    # Different seeds: the weights must really be copied for the logits to agree.
    assert not np.allclose(unrolled_model(ids).numpy(), cifg_model(ids).numpy())
    unrolled_model.set_weights(cifg_model.get_weights())
    np.testing.assert_allclose(unrolled_model(ids).numpy(), cifg_model(ids).numpy(), rtol=1e-5, atol=1e-6)


def test_build_model_unrolled_lstm_matches_dynamic(lstm_model: tf.keras.Model) -> None:
    config = ModelConfig.from_preset("tiny", vocab_size=V, cell="lstm")
    unrolled = build_model(config, seed=1, unroll=True, batch_size=B, seq_len=T)
    unrolled.set_weights(lstm_model.get_weights())
    ids = _ids(seed=9)
    np.testing.assert_allclose(unrolled(ids).numpy(), lstm_model(ids).numpy(), rtol=1e-5, atol=1e-6)


def test_build_model_logits_depend_on_history(cifg_model: tf.keras.Model) -> None:
    ids = _ids(1, T, seed=2)
    changed = ids.copy()
    changed[0, 0] = (changed[0, 0] + 1) % V
    a, b = cifg_model(ids).numpy(), cifg_model(changed).numpy()
    assert not np.allclose(a[0, -1], b[0, -1])  # the last step sees the first word
    # ... and is causal: earlier positions never see later words.
    later = ids.copy()
    later[0, -1] = (later[0, -1] + 1) % V
    np.testing.assert_allclose(cifg_model(later).numpy()[0, :-1], a[0, :-1], rtol=1e-6, atol=1e-7)


# ---- masked cross-entropy ----------------------------------------------------------------


def _numpy_masked_ce(labels: np.ndarray, logits: np.ndarray, pad_id: int) -> float:
    logp = _log_softmax(logits.astype(np.float64))
    nll = -np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    mask = labels != pad_id
    return float(nll[mask].sum() / mask.sum())


def test_masked_cross_entropy_matches_numpy_with_padding() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([[4, 5, 0, 0], [6, 1, 7, 0]], dtype=np.int32)  # 5 real targets
    logits = rng.normal(scale=2.0, size=(2, 4, 8)).astype(np.float32)
    got = float(MaskedCrossEntropy(pad_id=0)(labels, logits))
    want = _numpy_masked_ce(labels, logits, pad_id=0)
    assert got == pytest.approx(want, rel=1e-5)
    # Mean over the 5 real tokens, not over the 8 positions nor the 2 rows.
    logp = _log_softmax(logits.astype(np.float64))
    real = [(0, 0, 4), (0, 1, 5), (1, 0, 6), (1, 1, 1), (1, 2, 7)]
    assert got == pytest.approx(-sum(logp[b, t, w] for b, t, w in real) / 5, rel=1e-5)


def test_masked_cross_entropy_tokens_per_batch_divides_the_sum_by_that_constant() -> None:
    rng = np.random.default_rng(4)
    labels = np.array([[4, 5, 0, 0], [6, 1, 7, 0]], dtype=np.int32)  # 5 real targets
    logits = rng.normal(scale=2.0, size=(2, 4, 8)).astype(np.float32)
    got = float(MaskedCrossEntropy(pad_id=0, tokens_per_batch=8.0)(labels, logits))
    assert got == pytest.approx(_numpy_masked_ce(labels, logits, pad_id=0) * 5 / 8, rel=1e-5)


@pytest.mark.parametrize("tokens", [0.0, -3.0, float("nan")])
def test_masked_cross_entropy_bad_tokens_per_batch_named(tokens: float) -> None:
    with pytest.raises(ValueError, match=re.escape(f"tokens_per_batch must be positive, got {tokens!r}")):
        MaskedCrossEntropy(pad_id=0, tokens_per_batch=tokens)


def test_masked_cross_entropy_ignores_logits_at_padding() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([[4, 5, 0], [6, 0, 0]], dtype=np.int32)
    logits = rng.normal(size=(2, 3, 8)).astype(np.float32)
    noisy = logits.copy()
    noisy[labels == 0] = rng.normal(scale=50.0, size=(3, 8))
    loss = MaskedCrossEntropy(pad_id=0)
    assert float(loss(labels, noisy)) == pytest.approx(float(loss(labels, logits)), rel=1e-6)


def test_masked_cross_entropy_nonzero_pad_id() -> None:
    rng = np.random.default_rng(2)
    labels = np.array([[0, 3, 3], [2, 0, 3]], dtype=np.int32)  # pad is 3 here; 0 is a word
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    got = float(MaskedCrossEntropy(pad_id=3)(labels, logits))
    assert got == pytest.approx(_numpy_masked_ce(labels, logits, pad_id=3), rel=1e-5)


def test_masked_cross_entropy_all_padding_is_zero() -> None:
    labels = np.zeros((2, 3), dtype=np.int32)
    logits = np.random.default_rng(3).normal(size=(2, 3, 6)).astype(np.float32)
    got = float(MaskedCrossEntropy(pad_id=0)(labels, logits))
    assert got == 0.0
    assert not np.isnan(got)


def test_masked_cross_entropy_value_and_gradient_match_tf_sparse_softmax_op() -> None:
    # The loss is written as logsumexp - picked logit for speed; TF's fused op is the reference.
    rng = np.random.default_rng(4)
    labels = tf.constant([[4, 5, 0, 9], [6, 1, 7, 0], [2, 3, 3, 8]], dtype=tf.int32)
    logits = tf.constant(rng.normal(scale=3.0, size=(3, 4, 10)).astype(np.float32))

    def reference(y_pred: tf.Tensor) -> tf.Tensor:
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=y_pred)
        mask = tf.cast(tf.not_equal(labels, 0), tf.float32)
        return tf.reduce_sum(per_token * mask) / tf.reduce_sum(mask)

    values, grads = [], []
    for fn in (reference, lambda y_pred: MaskedCrossEntropy(pad_id=0)(labels, y_pred)):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = fn(logits)
        values.append(float(value))
        grads.append(tape.gradient(value, logits).numpy())
    assert values[1] == pytest.approx(values[0], rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)
    assert np.all(grads[1][0, 2] == 0.0)  # a pad target gets no gradient


def test_masked_cross_entropy_get_config_round_trip() -> None:
    loss = MaskedCrossEntropy(pad_id=7, name="mce")
    config = loss.get_config()
    assert config["pad_id"] == 7
    clone = MaskedCrossEntropy.from_config(config)
    assert (clone.pad_id, clone.name) == (7, "mce")


def test_build_model_dropout_adds_no_variables_and_is_off_at_inference() -> None:
    plain = build_model(CONFIG, seed=3)
    dropped = build_model(CONFIG, seed=3, dropout=0.5)
    assert [v.name for v in dropped.weights] == [v.name for v in plain.weights]
    ids = tf.constant([[2, 5, 6, 7], [2, 8, 9, 4]], dtype=tf.int32)
    np.testing.assert_array_equal(dropped(ids, training=False).numpy(), plain(ids, training=False).numpy())
    trained = dropped(ids, training=True).numpy()
    assert not np.allclose(trained, plain(ids, training=False).numpy())


def test_build_model_without_dropout_has_no_dropout_layer() -> None:
    assert not [layer for layer in build_model(CONFIG).layers if isinstance(layer, tf.keras.layers.Dropout)]
    names = [layer.name for layer in build_model(CONFIG, dropout=0.25).layers if "dropout" in layer.name]
    assert names == ["dropout_embedding", "dropout_rnn_0"]


@pytest.mark.parametrize("rate", [1.0, -0.5, float("nan")])
def test_build_model_dropout_out_of_range_named(rate: float) -> None:
    with pytest.raises(ValueError, match=re.escape(f"dropout must be in [0, 1), got {rate!r}")):
        build_model(CONFIG, dropout=rate)
