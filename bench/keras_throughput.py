"""Keras training throughput (tokens/s) before and after the hoisted CIFG input projection.

For each batch size, times Adam training steps (``model.central.compile_model``)
of three builds of the same model with the same weights, interleaved in one
run so that the ratios hold on a shared, noisy machine:

- ``before``: ``tf.keras.layers.RNN`` over the cell as it was, ``x W`` inside
  the recurrence, and the loss on TF's fused sparse-softmax cross-entropy op
  (both kept here only as the reference);
- ``after``: ``model.build_model`` as it is (``model.cifg.CIFG``);
- ``after+xla``: the same compiled with ``jit_compile=True``.

Each figure is the best of ``--repeats`` passes over ``--steps`` batches; wall
tokens/s and CPU ms per step (all threads) are printed, as CPU time is the
steadier of the two when other jobs share the cores.

    .venv/bin/python bench/keras_throughput.py [--preset small] [--batch-sizes 16 64] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

from model import CentralConfig, MaskedCrossEntropy, ModelConfig, build_model
from model.central import compile_model
from model.cifg import CIFG


class _CellBefore(tf.keras.layers.Layer):
    """The CIFG cell before the input projection left the loop: ``z = x W + h R + b`` every step."""

    def __init__(self, units: int, **kwargs: Any) -> None:
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
        h, c = states  # (B, U), (B, U)
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel) + self.bias  # (B, 3U)
        z_i, z_o, z_g = tf.split(z, 3, axis=-1)
        i, o, g = tf.sigmoid(z_i), tf.sigmoid(z_o), tf.tanh(z_g)
        c_new = (1.0 - i) * c + i * g
        h_new = o * tf.tanh(c_new)
        return h_new, [h_new, c_new]


class _LossBefore(MaskedCrossEntropy):
    """The loss before: TF's fused sparse-softmax cross-entropy op, masked the same way."""

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(y_true, tf.int32)  # (B, T)
        per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=y_pred)  # (B, T)
        mask = tf.cast(tf.not_equal(labels, self.pad_id), per_token.dtype)
        return tf.reduce_sum(per_token * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def _model_before(after: tf.keras.Model) -> tf.keras.Model:
    def swap(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if isinstance(layer, CIFG):
            cell = _CellBefore(layer.cell.units, name=layer.cell.name)
            return tf.keras.layers.RNN(cell, return_sequences=True, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    before = tf.keras.models.clone_model(after, clone_function=swap)
    before.set_weights(after.get_weights())
    return before


def _variants(config: ModelConfig, seed: int) -> dict[str, tf.keras.Model]:
    central = CentralConfig()

    def adam() -> tf.keras.optimizers.Optimizer:
        return tf.keras.optimizers.Adam(learning_rate=central.learning_rate, clipnorm=central.clipnorm)

    before = _model_before(build_model(config, seed=seed))
    before.compile(optimizer=adam(), loss=_LossBefore(config.pad_id))
    after = build_model(config, seed=seed)
    compile_model(after, config, central.learning_rate, central.clipnorm)
    xla = build_model(config, seed=seed)
    xla.compile(optimizer=adam(), loss=MaskedCrossEntropy(config.pad_id), jit_compile=True)
    return {"before": before, "after": after, "after+xla": xla}


def _time_pass(model: tf.keras.Model, ds: tf.data.Dataset) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = ModelConfig.from_preset(args.preset, args.vocab_size)
    print(f"Keras training, {args.preset}, vocab {args.vocab_size}, {args.seq_len} tokens a row, {os.cpu_count()} CPUs")
    print(f"{'batch':>6}{'variant':>11}{'tokens/s':>10}{'CPU ms/step':>13}{'vs before':>11}")
    rng = np.random.default_rng(args.seed)
    for batch in args.batch_sizes:
        x = rng.integers(4, args.vocab_size, size=(batch * args.steps, args.seq_len), dtype=np.int32)  # (N, T)
        ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(batch).cache()
        models = _variants(config, args.seed)
        for model in models.values():
            model.fit(ds.take(3), epochs=1, verbose=0)  # trace, compile and warm up
        best = {name: (float("inf"), float("inf")) for name in models}
        for _ in range(args.repeats):  # interleaved: load changes hit every variant alike
            for name, model in models.items():
                cpu, wall = _time_pass(model, ds)
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
        for name, (cpu, wall) in best.items():
            rate = batch * args.seq_len * args.steps / wall
            speedup = best["before"][1] / wall
            print(f"{batch:>6}{name:>11}{rate:>10,.0f}{1000 * cpu / args.steps:>13.1f}{speedup:>11.2f}")


if __name__ == "__main__":
    main()
