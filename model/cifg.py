"""The Coupled Input and Forget Gate (CIFG) recurrent cell and layer.

CIFG (Greff et al. 2017, "LSTM: A Search Space Odyssey") ties the forget gate
to the input gate, ``f = 1 - i``. Gboard's next-word model uses it (Hard et al.
2018) because it has a quarter fewer parameters than an LSTM with the same
number of units at no measurable quality cost: fewer bytes to download, train
and upload on a phone. The cell uses matrix multiplies and elementwise ops
only, so an unrolled model converts to TFLite built-in ops.

:class:`CIFG` runs the cell over a sequence the way cuDNN-style RNN layers do
(Appleyard et al. 2016, "Optimizing Performance of Recurrent Neural Networks
on GPUs"): the input half of every gate, ``x W + b``, does not depend on the
state, so it is one (B*T, D) @ (D, 3U) matmul before the loop, and only
``h R`` stays inside the recurrence. Same variables, same equations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

# Initial input-gate bias: sigmoid(-1) ~ 0.27, so the coupled forget gate starts
# near 0.73 and the cell remembers by default, the CIFG analogue of the LSTM's
# ``unit_forget_bias`` (Jozefowicz et al. 2015).
_INPUT_GATE_BIAS = -1.0


class CIFGCell(tf.keras.layers.Layer):
    """One CIFG step: state ``[h, c]``, each of shape (batch, units)."""

    def __init__(self, units: int, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"CIFGCell units must be positive, got {units}")
        self.units = units
        self.seed = seed
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape: tf.TensorShape) -> None:
        input_dim = int(input_shape[-1])
        u = self.units
        # Gate order in the fused matrices: input, output, candidate.
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, 3 * u),
            initializer=tf.keras.initializers.GlorotUniform(seed=self.seed),
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(u, 3 * u),
            initializer=tf.keras.initializers.Orthogonal(seed=self.seed),
        )
        bias_init = np.concatenate([np.full(u, _INPUT_GATE_BIAS), np.zeros(2 * u)]).astype(np.float32)
        self.bias = self.add_weight(
            name="bias",
            shape=(3 * u,),
            initializer=tf.keras.initializers.Constant(bias_init),
        )
        self.built = True

    def input_projection(self, inputs: tf.Tensor) -> tf.Tensor:
        """``x W + b`` for inputs (..., D) -> (..., 3U): the gates' state-free half."""
        flat = tf.reshape(inputs, (-1, tf.shape(inputs)[-1]))  # (N, D)
        projected = tf.matmul(flat, self.kernel) + self.bias  # (N, 3U)
        return tf.reshape(projected, tf.concat([tf.shape(inputs)[:-1], [3 * self.units]], axis=0))

    def recurrent_step(self, projected: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """One step from ``projected = x W + b`` (B, 3U) and the state ``[h, c]``."""
        h, c = states  # (B, U), (B, U)
        z = projected + tf.matmul(h, self.recurrent_kernel)  # (B, 3U)
        z_i, z_o, z_g = tf.split(z, 3, axis=-1)  # each (B, U)
        i = tf.sigmoid(z_i)
        o = tf.sigmoid(z_o)
        g = tf.tanh(z_g)
        c_new = (1.0 - i) * c + i * g  # forget gate coupled: f = 1 - i
        h_new = o * tf.tanh(c_new)
        return h_new, [h_new, c_new]

    def call(self, inputs: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        return self.recurrent_step(self.input_projection(inputs), states)  # inputs (B, D)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "seed": self.seed}


class CIFG(tf.keras.layers.Layer):
    """A CIFG over a whole sequence: (B, T, D) -> every step's ``h``, (B, T, U).

    Replaces ``tf.keras.layers.RNN(cell, return_sequences=True)`` with the
    input projection hoisted out of the loop; the cell is a tracked sublayer,
    so the variables (``<layer>/<cell>/kernel``, ``recurrent_kernel``,
    ``bias``) and their order are those of the Keras RNN layer. The state
    starts at zeros. ``unroll`` needs a static sequence length and gives a
    graph without a while loop (the TFLite training export).
    """

    def __init__(self, cell: CIFGCell, unroll: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.unroll = unroll

    def build(self, input_shape: tf.TensorShape) -> None:
        if not self.cell.built:
            # The Keras RNN layer's scope: checkpoints name the weights <layer>/<cell>/<weight>.
            with tf.keras.backend.name_scope(self.cell.name):
                self.cell.build(tf.TensorShape([input_shape[0], input_shape[-1]]))
        self.built = True

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        projected = self.cell.input_projection(inputs)  # (B, T, 3U)
        zeros = tf.zeros((tf.shape(inputs)[0], self.cell.units), dtype=projected.dtype)  # (B, U)
        _, outputs, _ = tf.keras.backend.rnn(
            self.cell.recurrent_step,
            projected,
            [zeros, zeros],
            unroll=self.unroll,
            input_length=inputs.shape[1],
        )
        return outputs  # (B, T, U)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        shape = tf.TensorShape(input_shape)
        return tf.TensorShape([shape[0], shape[1], self.cell.units])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "cell": tf.keras.layers.serialize(self.cell),
            "unroll": self.unroll,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CIFG:
        cell = tf.keras.layers.deserialize(config.pop("cell"), custom_objects={"CIFGCell": CIFGCell})
        return cls(cell, **config)
