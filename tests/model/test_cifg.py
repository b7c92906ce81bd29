"""Tests for the Coupled Input and Forget Gate cell (model/cifg.py).

CIFG equations, gate order (input, output, candidate) in the fused matrices:
    z = x W + h R + b,   i = sigmoid(z_i),  o = sigmoid(z_o),  g = tanh(z_g)
    c' = (1 - i) * c + i * g        (forget gate f = 1 - i)
    h' = o * tanh(c')
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from model.cifg import CIFG, CIFGCell

IN_DIM, UNITS, BATCH = 4, 3, 2


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _cifg_step_numpy(
    x: np.ndarray, h: np.ndarray, c: np.ndarray, w: np.ndarray, r: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    z = x @ w + h @ r + b
    u = h.shape[-1]
    i, o, g = _sigmoid(z[:, :u]), _sigmoid(z[:, u : 2 * u]), np.tanh(z[:, 2 * u :])
    c_new = (1.0 - i) * c + i * g
    return o * np.tanh(c_new), c_new


@pytest.fixture(scope="module")
def hand_set() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "w": rng.normal(size=(IN_DIM, 3 * UNITS)).astype(np.float32),
        "r": rng.normal(size=(UNITS, 3 * UNITS)).astype(np.float32),
        "b": rng.normal(size=(3 * UNITS,)).astype(np.float32),
        "x": rng.normal(size=(BATCH, IN_DIM)).astype(np.float32),
        "h": rng.normal(size=(BATCH, UNITS)).astype(np.float32),
        "c": rng.normal(size=(BATCH, UNITS)).astype(np.float32),
    }


def _built_cell(weights: dict[str, np.ndarray] | None = None, seed: int | None = 0) -> CIFGCell:
    cell = CIFGCell(UNITS, seed=seed)
    cell.build(tf.TensorShape([None, IN_DIM]))
    if weights is not None:
        cell.set_weights([weights["w"], weights["r"], weights["b"]])
    return cell


def test_cifg_step_matches_numpy_equations(hand_set: dict[str, np.ndarray]) -> None:
    cell = _built_cell(hand_set)
    out, (h_new, c_new) = cell(tf.constant(hand_set["x"]), [tf.constant(hand_set["h"]), tf.constant(hand_set["c"])])
    want_h, want_c = _cifg_step_numpy(
        hand_set["x"].astype(np.float64),
        hand_set["h"].astype(np.float64),
        hand_set["c"].astype(np.float64),
        hand_set["w"].astype(np.float64),
        hand_set["r"].astype(np.float64),
        hand_set["b"].astype(np.float64),
    )
    np.testing.assert_allclose(c_new.numpy(), want_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_new.numpy(), want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.numpy(), h_new.numpy())


def test_cifg_step_forget_gate_is_one_minus_input() -> None:
    # Zero weights; the bias alone fixes the gates: i = sigmoid(2) ~ 0.88, o = sigmoid(0) = 0.5,
    # g = 0.6. The cell keeps exactly (1 - i) of the old state, so f = 1 - i ~ 0.12.
    i_bias = 2.0
    b = np.concatenate([np.full(UNITS, i_bias), np.zeros(UNITS), np.full(UNITS, np.arctanh(0.6))]).astype(np.float32)
    zeros = {"w": np.zeros((IN_DIM, 3 * UNITS), np.float32), "r": np.zeros((UNITS, 3 * UNITS), np.float32), "b": b}
    cell = _built_cell(zeros)
    c = np.array([[1.0, -2.0, 0.0], [0.5, 0.25, 3.0]], dtype=np.float32)
    _, (h_new, c_new) = cell(tf.ones((BATCH, IN_DIM)), [tf.zeros((BATCH, UNITS)), tf.constant(c)])
    i = _sigmoid(i_bias)
    want_c = (1.0 - i) * c + i * 0.6
    np.testing.assert_allclose(c_new.numpy(), want_c, rtol=1e-6)
    np.testing.assert_allclose(h_new.numpy(), 0.5 * np.tanh(want_c), rtol=1e-6)


def test_cifg_initial_bias_input_gate_negative() -> None:
    cell = _built_cell()
    bias = cell.bias.numpy()
    np.testing.assert_array_equal(bias[:UNITS], -1.0)
    np.testing.assert_array_equal(bias[UNITS:], 0.0)


def test_cifg_weight_shapes_fused_three_gates() -> None:
    cell = _built_cell()
    assert tuple(cell.kernel.shape) == (IN_DIM, 3 * UNITS)
    assert tuple(cell.recurrent_kernel.shape) == (UNITS, 3 * UNITS)
    assert tuple(cell.bias.shape) == (3 * UNITS,)


@pytest.mark.parametrize(("in_dim", "units"), [(4, 3), (16, 32), (96, 670)])
def test_cifg_param_count_three_quarters_of_lstm(in_dim: int, units: int) -> None:
    cifg = CIFGCell(units, seed=0)
    cifg.build(tf.TensorShape([None, in_dim]))
    lstm = tf.keras.layers.LSTMCell(units)
    lstm.build(tf.TensorShape([None, in_dim]))
    cifg_params = cifg.count_params()
    lstm_params = lstm.count_params()
    assert cifg_params == 3 * (in_dim + units + 1) * units
    assert 4 * cifg_params == 3 * lstm_params


def test_cifg_same_seed_same_init_different_seed_differs() -> None:
    a, b, c = _built_cell(seed=3), _built_cell(seed=3), _built_cell(seed=4)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.kernel.numpy(), c.kernel.numpy())


def test_cifg_get_config_round_trip() -> None:
    cell = CIFGCell(5, seed=11, name="my_cifg")
    config = cell.get_config()
    assert config["units"] == 5
    assert config["seed"] == 11
    clone = CIFGCell.from_config(config)
    assert isinstance(clone, CIFGCell)
    assert (clone.units, clone.seed, clone.name) == (5, 11, "my_cifg")
    assert clone.get_config() == config


def test_cifg_state_size_two_vectors_of_units() -> None:
    cell = CIFGCell(7)
    assert list(cell.state_size) == [7, 7]
    assert cell.output_size == 7


@pytest.mark.parametrize("units", [0, -1])
def test_cifg_nonpositive_units_rejected(units: int) -> None:
    with pytest.raises(ValueError, match=f"got {units}"):
        CIFGCell(units)


def test_cifg_in_rnn_runs_sequence_like_repeated_steps(hand_set: dict[str, np.ndarray]) -> None:
    cell = _built_cell(hand_set)
    rnn = tf.keras.layers.RNN(cell, return_sequences=True)
    xs = np.random.default_rng(1).normal(size=(BATCH, 3, IN_DIM)).astype(np.float32)
    got = rnn(tf.constant(xs)).numpy()
    h = np.zeros((BATCH, UNITS))
    c = np.zeros((BATCH, UNITS))
    for t in range(3):
        h, c = _cifg_step_numpy(xs[:, t].astype(np.float64), h, c, hand_set["w"], hand_set["r"], hand_set["b"])
        np.testing.assert_allclose(got[:, t], h, rtol=1e-5, atol=1e-6)


# ---- the sequence layer against the cell it replaced -------------------------------------


class _ReferenceCIFGCell(tf.keras.layers.Layer):
    """The cell as it was before the input projection left the loop (kept as the reference)."""

    def __init__(self, units: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape: tf.TensorShape) -> None:
        u = self.units
        self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), 3 * u))
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, 3 * u))
        self.bias = self.add_weight(name="bias", shape=(3 * u,))
        self.built = True

    def call(self, inputs: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        h, c = states
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel) + self.bias
        z_i, z_o, z_g = tf.split(z, 3, axis=-1)
        i, o, g = tf.sigmoid(z_i), tf.sigmoid(z_o), tf.tanh(z_g)
        c_new = (1.0 - i) * c + i * g
        h_new = o * tf.tanh(c_new)
        return h_new, [h_new, c_new]


SEQ_BATCH, SEQ_LEN, SEQ_IN, SEQ_UNITS = 3, 7, 16, 32


def _outputs_and_gradients(layer: tf.keras.layers.Layer, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    inputs = tf.constant(x)
    # A fixed random readout gives every output a different weight in the loss.
    readout = tf.constant(np.random.default_rng(5).normal(size=(SEQ_BATCH, SEQ_LEN, SEQ_UNITS)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)  # (B, T, U)
        loss = tf.reduce_sum(outputs * readout)
    grads = tape.gradient(loss, [inputs, *layer.trainable_weights])
    return outputs.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("unroll", [False, True])
def test_cifg_layer_matches_reference_cell_outputs_and_gradients(unroll: bool) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(SEQ_BATCH, SEQ_LEN, SEQ_IN)).astype(np.float32)
    weights = [
        rng.normal(scale=0.3, size=(SEQ_IN, 3 * SEQ_UNITS)).astype(np.float32),
        rng.normal(scale=0.3, size=(SEQ_UNITS, 3 * SEQ_UNITS)).astype(np.float32),
        rng.normal(scale=0.3, size=(3 * SEQ_UNITS,)).astype(np.float32),
    ]
    reference = tf.keras.layers.RNN(_ReferenceCIFGCell(SEQ_UNITS), return_sequences=True, unroll=unroll)
    layer = CIFG(CIFGCell(SEQ_UNITS, seed=0), unroll=unroll)
    for candidate in (reference, layer):
        candidate.build(tf.TensorShape([SEQ_BATCH, SEQ_LEN, SEQ_IN]))
        candidate.set_weights(weights)
    want_out, want_grads = _outputs_and_gradients(reference, x)
    got_out, got_grads = _outputs_and_gradients(layer, x)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-6, atol=1e-6)
    assert len(got_grads) == len(want_grads) == 4  # inputs, kernel, recurrent kernel, bias
    for got, want in zip(got_grads, want_grads, strict=True):
        # float32 gradients summed over 1,536 kernel entries in another order: one entry in 1,536 was seen 1.5e-6 off
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=2e-6)


def test_cifg_layer_variables_named_and_ordered_like_keras_rnn() -> None:
    reference = tf.keras.layers.RNN(_ReferenceCIFGCell(SEQ_UNITS, name="cifg_cell_0"), name="rnn_0")
    layer = CIFG(CIFGCell(SEQ_UNITS, name="cifg_cell_0"), name="rnn_0")
    names = []
    for candidate in (reference, layer):
        candidate(tf.zeros((1, 2, SEQ_IN)))  # built inside __call__, under the layer's name scope
        names.append([(w.name, tuple(w.shape)) for w in candidate.weights])
    assert names[1] == names[0]
    assert names[1][0] == ("rnn_0/cifg_cell_0/kernel:0", (SEQ_IN, 3 * SEQ_UNITS))


def test_cifg_layer_step_zero_state_is_cell_step_from_zeros(hand_set: dict[str, np.ndarray]) -> None:
    # The layer starts from h = c = 0: its first output is the cell's step from zeros.
    layer = CIFG(CIFGCell(UNITS, seed=0))
    layer.build(tf.TensorShape([BATCH, 1, IN_DIM]))
    layer.set_weights([hand_set["w"], hand_set["r"], hand_set["b"]])
    got = layer(tf.constant(hand_set["x"][:, None, :])).numpy()[:, 0]  # (B, U)
    zeros = np.zeros((BATCH, UNITS))
    want_h, _ = _cifg_step_numpy(
        hand_set["x"].astype(np.float64), zeros, zeros, *(hand_set[k].astype(np.float64) for k in ("w", "r", "b"))
    )
    np.testing.assert_allclose(got, want_h, rtol=1e-5, atol=1e-6)


def test_cifg_layer_get_config_round_trip() -> None:
    layer = CIFG(CIFGCell(5, seed=2, name="c"), unroll=True, name="rnn_3")
    clone = CIFG.from_config(layer.get_config())
    assert (clone.name, clone.unroll, clone.cell.units, clone.cell.seed, clone.cell.name) == ("rnn_3", True, 5, 2, "c")
