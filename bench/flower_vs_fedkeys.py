"""Round time of fedkeys's TFF simulation against Flower's simulation engine, in one run.

Flower (Beutel et al. 2020, "Flower: A Friendly Federated Learning Framework")
is what a user would pick instead of fedkeys. Both run the same FedAvg round:
the same 10 clients and rows (one round's sample of ``--data``), the same CIFG
model (``model.build_model``, same initial weights), one local epoch of SGD at
``--client-lr`` in batches of ``--batch-size``, and a token-weighted mean of
the client models at server rate 1. Each configuration runs one warm-up round
(tracing, actor start-up) and then ``--rounds`` timed rounds:

- fedkeys: ``tff_sim.algorithms.build_process`` on 1 and 2 local TFF workers
  (``tff_sim.runtime``), round time = ``process.next``;
- Flower 1.23 with its Ray backend, 1 and 2 Ray actors (``num_cpus`` per
  client 2 or 1 of the machine's 2). Flower gets its best case: each actor
  keeps one compiled Keras model across clients and rounds instead of building
  one per client. Round time = from the strategy's ``configure_fit`` to its
  ``aggregate_fit`` (evaluation off).

The four configurations run in the order Flower 2 actors, fedkeys 1 worker,
Flower 1 actor, fedkeys 2 workers, so that a load change on a shared machine
does not fall on one framework only.

Needs the optional ``flower`` dependency group, which the default install does
not pull:

    uv sync --no-default-groups --group flower     # or UV_PROJECT_ENVIRONMENT=DIR for a separate venv
    .venv/bin/python bench/flower_vs_fedkeys.py --data runs/shk10k [--rounds 5] [--clients 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # see fedkeys.cli
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import numpy as np
import tensorflow as tf

from data_tools import load_prepared
from model import MaskedCrossEntropy, ModelConfig, build_model
from tff_sim.algorithms import build_process, model_fn_for
from tff_sim.client_datasets import client_rows, to_dataset
from tff_sim.config import SimConfig
from tff_sim.runtime import RuntimeConfig, tff_runtime
from tff_sim.simulation import sampled_round, sim_model_config
from wire.contract import ClientTraining

Rows = tuple[np.ndarray, np.ndarray]  # (inputs, targets), each (R, T) int32


def _round_rows(data_dir: Path, sim: SimConfig) -> tuple[ModelConfig, list[Rows], int]:
    corpus = load_prepared(data_dir)
    config = sim_model_config(corpus.tokenizer.vocab_size, sim.preset)
    clients = sampled_round(corpus.train, sim, config, 0).clients
    rows = [
        client_rows(
            corpus.train,
            int(c),
            config,
            sim.seq_len,
            seed=sim.training.data_seed,
            round_num=0,
            max_rows=sim.training.max_rows,
        )
        for c in clients
    ]
    tokens = sum(int(np.count_nonzero(targets != config.pad_id)) for _, targets in rows)
    return config, rows, tokens


def _fedkeys_round_seconds(
    config: ModelConfig, rows: list[Rows], sim: SimConfig, workers: int, rounds: int, log_dir: Path
) -> list[float]:
    process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
    datasets = [to_dataset(r, sim.batch_size) for r in rows]
    seconds = []
    with tff_runtime(RuntimeConfig(local_workers=workers, log_dir=log_dir), default_num_clients=len(rows)):
        state = process.initialize()
        state = process.next(state, datasets).state  # warm-up: tracing and compilation
        for _ in range(rounds):
            start = time.perf_counter()
            state = process.next(state, datasets).state
            seconds.append(time.perf_counter() - start)
    return seconds


def _actor_model(config: ModelConfig, client_lr: float) -> tf.keras.Model:
    """One compiled model per Ray actor process, reused by every client it runs (Flower's best case)."""
    cache = sys.modules.setdefault("_fedkeys_flower_bench", types.ModuleType("_fedkeys_flower_bench"))
    if not hasattr(cache, "model"):
        model = build_model(config)
        model.compile(optimizer=tf.keras.optimizers.SGD(client_lr), loss=MaskedCrossEntropy(config.pad_id))
        setattr(cache, "model", model)  # noqa: B010 (a plain module has no declared attributes)
    return getattr(cache, "model")  # noqa: B009


def _client_fn(config: ModelConfig, rows: list[Rows], sim: SimConfig) -> Callable[[Any], Any]:
    from flwr.client import NumPyClient

    class KerasClient(NumPyClient):
        def __init__(self, client_rows: Rows) -> None:
            self.rows = client_rows

        def fit(self, parameters: list[np.ndarray], fit_config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
            model = _actor_model(config, sim.training.learning_rate)
            model.set_weights(parameters)
            model.optimizer.iterations.assign(0)
            model.fit(to_dataset(self.rows, sim.batch_size), epochs=1, verbose=0)
            tokens = int(np.count_nonzero(self.rows[1] != config.pad_id))  # FedAvg weight, as in fedkeys
            return model.get_weights(), tokens, {}

    def client_fn(context: Any) -> Any:
        return KerasClient(rows[int(context.node_config["partition-id"])]).to_client()

    return client_fn


def _flower_round_seconds(
    config: ModelConfig, rows: list[Rows], sim: SimConfig, actors: int, rounds: int
) -> list[float]:
    from flwr.client import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    class TimedFedAvg(FedAvg):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.starts: list[float] = []
            self.ends: list[float] = []

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            self.starts.append(time.perf_counter())
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            if failures:
                raise RuntimeError(f"Flower round {server_round}: {len(failures)} clients failed: {failures[0]!r}")
            out = super().aggregate_fit(server_round, results, failures)
            self.ends.append(time.perf_counter())
            return out

    n = len(rows)
    strategy = TimedFedAvg(
        fraction_fit=1.0,
        min_fit_clients=n,
        min_available_clients=n,
        fraction_evaluate=0.0,
        min_evaluate_clients=0,
        initial_parameters=ndarrays_to_parameters(build_model(config, seed=sim.seed).get_weights()),
    )
    server = ServerApp(
        server_fn=lambda context: ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds + 1))
    )
    cpus = os.cpu_count() or 1
    backend = {
        "client_resources": {"num_cpus": cpus / actors, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "include_dashboard": False, "log_to_driver": False},
    }
    run_simulation(server, ClientApp(client_fn=_client_fn(config, rows, sim)), num_supernodes=n, backend_config=backend)
    if len(strategy.ends) != rounds + 1:
        raise RuntimeError(f"Flower ran {len(strategy.ends)} of {rounds + 1} rounds")
    return [end - start for start, end in zip(strategy.starts[1:], strategy.ends[1:], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", default="small")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--client-lr", type=float, default=0.5)
    parser.add_argument("--only", choices=["fedkeys", "flower"], default=None)
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.WARNING)
    sim = SimConfig(
        algorithm="fedavg",  # what the Flower side runs (FedAvg weighted by tokens, server lr 1)
        clients_per_round=args.clients,
        preset=args.model,
        batch_size=args.batch_size,
        training=ClientTraining(learning_rate=args.client_lr),
    )
    config, rows, tokens = _round_rows(args.data, sim)
    steps = sum(-(-len(inputs) // sim.batch_size) for inputs, _ in rows)
    print(f"model {args.model}, vocab {config.vocab_size}, {len(rows)} clients a round, {steps} batches of")
    print(
        f"{sim.batch_size}, {tokens:,} tokens a round; {args.rounds} timed rounds after warm-up, {os.cpu_count()} CPUs"
    )
    results: dict[str, list[float]] = {}
    # Alternating frameworks, each one's fastest configuration next to the other's, so that a
    # load change on a shared machine does not fall on one framework only.
    plan = [("flower", 2), ("fedkeys", 1), ("flower", 1), ("fedkeys", 2)]
    with tempfile.TemporaryDirectory() as logs:
        for framework, n in plan:
            if args.only not in (None, framework):
                continue
            if framework == "fedkeys":
                label = f"fedkeys, {n} TFF worker{'s' if n > 1 else ''}"
                results[label] = _fedkeys_round_seconds(config, rows, sim, n, args.rounds, Path(logs))
            else:
                label = f"Flower 1.23, {n} Ray actor{'s' if n > 1 else ''}"
                results[label] = _flower_round_seconds(config, rows, sim, n, args.rounds)
            print(f"  {label}: {statistics.mean(results[label]):.2f} s/round", flush=True)
    base = statistics.mean(next(iter(results.values())))
    print(f"{'configuration':<28}{'s/round':>9}{'min':>7}{'tokens/s':>10}{'time vs first':>15}")
    for label, seconds in results.items():
        mean = statistics.mean(seconds)
        print(f"{label:<28}{mean:>9.2f}{min(seconds):>7.2f}{tokens / mean:>10,.0f}{mean / base:>15.2f}")
    fedkeys = [statistics.mean(s) for label, s in results.items() if label.startswith("fedkeys")]
    flower = [statistics.mean(s) for label, s in results.items() if label.startswith("Flower")]
    if fedkeys and flower:
        print(f"best fedkeys round time / best Flower round time: {min(fedkeys) / min(flower):.2f}")


if __name__ == "__main__":
    main()
