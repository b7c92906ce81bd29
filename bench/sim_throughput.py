"""TFF simulation throughput against plain Keras on the same tokens, in one process.

For K clients a round, times FedAvg rounds in TFF (owned local worker, after a
warm-up round) and a Keras SGD pass over exactly the same rows with the same
batch size, and prints tokens/s of each and their ratio.

    .venv/bin/python bench/sim_throughput.py --data DIR [--model small] [--clients 10 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # see fedkeys.cli

import tensorflow as tf

from data_tools import load_prepared
from model import MaskedCrossEntropy, build_model
from tff_sim.algorithms import build_process, model_fn_for
from tff_sim.config import SimConfig
from tff_sim.runtime import RuntimeConfig, tff_runtime
from tff_sim.simulation import sampled_round, sim_model_config
from wire.contract import ClientTraining


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="small")
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    corpus = load_prepared(Path(args.data))
    config = sim_model_config(corpus.tokenizer.vocab_size, args.model)
    print(f"model {args.model}, vocab {config.vocab_size}, batch {args.batch_size}, {os.cpu_count()} CPUs")
    print(f"{'K':>4}{'tokens/round':>14}{'TFF tok/s':>12}{'Keras tok/s':>13}{'TFF/Keras':>11}")
    for k in args.clients:
        training = ClientTraining(learning_rate=0.5)
        sim = SimConfig(clients_per_round=k, preset=args.model, batch_size=args.batch_size, training=training)
        process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
        rounds = []
        for r in range(args.rounds + 1):
            sampled = sampled_round(corpus.train, sim, config, r)
            rounds.append((sampled.datasets, sampled.tokens))
        with tff_runtime(RuntimeConfig(log_dir=Path("/tmp")), default_num_clients=k):
            state = process.initialize()
            state = process.next(state, rounds[0][0]).state  # warm-up: tracing and compilation
            start = time.perf_counter()
            for datasets, _ in rounds[1:]:
                state = process.next(state, datasets).state
            tff_seconds = time.perf_counter() - start
        tokens = sum(t for _, t in rounds[1:])
        keras_model = build_model(config)
        keras_model.compile(optimizer=tf.keras.optimizers.SGD(0.5), loss=MaskedCrossEntropy(config.pad_id))
        keras_model.fit(rounds[0][0][0], epochs=1, verbose=0)  # warm-up
        start = time.perf_counter()
        for datasets, _ in rounds[1:]:  # the same batches, one pass, no per-client model copies
            pooled = datasets[0]
            for ds in datasets[1:]:
                pooled = pooled.concatenate(ds)
            keras_model.fit(pooled, epochs=1, verbose=0)
        keras_seconds = time.perf_counter() - start
        tff_rate, keras_rate = tokens / tff_seconds, tokens / keras_seconds
        print(f"{k:>4}{tokens // args.rounds:>14,}{tff_rate:>12,.0f}{keras_rate:>13,.0f}{tff_rate / keras_rate:>11.2f}")


if __name__ == "__main__":
    main()
