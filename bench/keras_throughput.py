"""Keras training throughput (tokens/s) of each model preset on this machine.

The reference that later benchmarks (TFF simulation, on-device LiteRT training)
compare against. All presets are timed in one run, so the printed ratios hold
even on a shared, noisy machine; absolute figures vary from run to run.

    .venv/bin/python bench/keras_throughput.py [--vocab-size 10000] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

from model import PRESETS, CentralConfig, ModelConfig, build_model
from model.central import compile_model


def tokens_per_second(preset: str, vocab_size: int, batch_size: int, seq_len: int, steps: int, seed: int) -> float:
    config = ModelConfig.from_preset(preset, vocab_size)
    model = build_model(config, seed=seed)
    central = CentralConfig(batch_size=batch_size)
    compile_model(model, config, central.learning_rate, central.clipnorm)
    rng = np.random.default_rng(seed)
    x = rng.integers(4, vocab_size, size=(batch_size * steps, seq_len), dtype=np.int32)  # (N, T)
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(batch_size)
    model.fit(ds.take(3), epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    return batch_size * seq_len * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rates = {
        preset: tokens_per_second(preset, args.vocab_size, args.batch_size, args.seq_len, args.steps, args.seed)
        for preset in PRESETS
    }
    shape = f"batch {args.batch_size} x {args.seq_len} tokens"
    print(f"Keras training, vocab {args.vocab_size}, {shape}, {os.cpu_count()} CPUs")
    print(f"{'preset':<8}{'params':>12}{'tokens/s':>12}{'vs small':>10}")
    for preset, rate in rates.items():
        params = build_model(ModelConfig.from_preset(preset, args.vocab_size)).count_params()
        print(f"{preset:<8}{params:>12,}{rate:>12,.0f}{rate / rates['small']:>10.2f}")


if __name__ == "__main__":
    main()
