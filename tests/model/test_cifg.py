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

from model.cifg import CIFGCell

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
