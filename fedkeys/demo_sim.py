"""The demo's TFF simulation: tff_sim's own FedAvg rounds from given initial weights, keeping per-round weights.

``fedkeys sim run`` scores validation users with TFF's federated evaluation,
which on two cores costs more than the rounds themselves. The demo instead
composes tff_sim's pieces (``sampled_round``, ``build_process``,
``model_fn_for`` in ``tff_runtime``), starts from the very weights the
coordinator's task starts from, and returns the model after the rounds it will
score, so simulation and deployment are scored by the same evaluator
(``fedkeys.demo_eval``). FedAvg as in McMahan et al. 2017, clients weighted by
tokens, server rate 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from data_tools import ClientData
from model import ModelConfig

logger = logging.getLogger(__name__)


def simulate(
    train: ClientData,
    model_config: ModelConfig,
    initial: Sequence[np.ndarray],
    sim: Any,  # tff_sim.config.SimConfig (imported lazily: it loads TFF)
    keep: set[int],
    run_dir: Path,
    *,
    progress: bool = True,
) -> tuple[list[dict[str, float]], dict[int, list[np.ndarray]]]:
    """Run ``sim.rounds`` rounds; (one row per round, the weights after each round in ``keep``).

    ``run_dir`` gets ``metrics.csv`` and ``tensorboard/`` (``tff_sim.run_log``, as ``sim run`` writes them)
    and the TFF workers' ``logs/``.
    """
    from tff_sim.aggregators import upload_bytes
    from tff_sim.algorithms import build_process, model_fn_for
    from tff_sim.run_log import RunLog
    from tff_sim.runtime import RuntimeConfig, tff_runtime
    from tff_sim.simulation import round_learning_rates, sampled_round, set_round_rates

    process = build_process(sim, model_fn_for(model_config, sim.seq_len, sim.seed))
    rows: list[dict[str, float]] = []
    kept: dict[int, list[np.ndarray]] = {}
    run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(run_dir)
    per_client = upload_bytes(sim.aggregator_name, [np.shape(w) for w in initial])  # the devices' codec's size
    with tff_runtime(RuntimeConfig(log_dir=run_dir / "logs"), default_num_clients=sim.clients_per_round):
        state = process.initialize()
        template = process.get_model_weights(state)
        state = process.set_model_weights(state, template._replace(trainable=[np.asarray(w) for w in initial]))
        bar = tqdm(range(1, sim.rounds + 1), desc="TFF FedAvg rounds", unit="round", disable=not progress)
        for round_num in bar:
            started = time.perf_counter()
            sampled = sampled_round(train, sim, model_config, round_num)
            state = set_round_rates(process, state, sim, round_num)
            result = process.next(state, sampled.datasets)
            state = result.state
            loss = float(result.metrics["client_work"]["train"]["loss"])
            rows.append({"round": round_num, "clients": len(sampled.clients), "tokens": sampled.tokens, "loss": loss})
            client_lr, server_lr = round_learning_rates(sim, round_num)
            log.append(
                {
                    "round": round_num, "loss": loss, "train_tokens": sampled.tokens, "clients": len(sampled.clients),
                    "eligible": sampled.eligible, "client_lr": client_lr, "server_lr": server_lr,
                    "upload_bytes": per_client * len(sampled.clients),
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )  # fmt: skip
            bar.set_postfix(loss=f"{loss:.3f}")
            if round_num in keep:
                kept[round_num] = [np.asarray(w, np.float32) for w in process.get_model_weights(state).trainable]
        bar.close()
    return rows, kept
