"""Simulation/deployment parity: one deployed round equals one TFF round, up to float noise.

What lets a user trust a simulation before shipping: with an exact codec
(float32, no quantization, no clipping, no DP), the same clients, data seed,
round number, learning rate, batch size, sequence length, row cap and local
epochs, ONE round through the coordinator — emulated phones training the
exported ``train.tflite`` in LiteRT and uploading over HTTP, FedAvg weighted by
tokens at server rate 1 (McMahan et al. 2017; Bonawitz et al. 2019) — ends at
the same global model as ONE round of TFF's own FedAvg process
(``tff_sim.algorithms``) started from the coordinator task's initial weights.

Both sides build a client's rows the contract's way: shuffled by
``default_rng([data_seed, 0xDA7A, round, client])`` where ``client`` is the
user's index in the training split and ``data_seed`` is the task's seed, sent
to devices as ``hyperparameters.data_seed``. The remaining difference is the
order of float additions (LiteRT vs TF kernels, server sums), ~1e-7..1e-6.

This module only composes: the coordinator (a running server), devices
(``device_runtime.Device``), TFF (``tff_sim``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_tools import load_prepared
from device_runtime import CoordinatorClient, Device, DeviceConditions, DeviceConfig, EligibilityPolicy, StoredExample
from device_runtime import event_log as ev
from fedkeys.admin_client import AdminClient
from fedkeys_errors import FedkeysError
from wire.manifest import load_manifest

logger = logging.getLogger(__name__)

_ALWAYS = DeviceConditions(idle=True, charging=True, unmetered=True, battery=1.0)
_RETENTION_S = 1e12  # keep every example: the device must see exactly the user's corpus messages
_COMMIT_TIMEOUT_S = 300.0


class ParityError(FedkeysError, ValueError):
    """The parity round could not run as configured (a device did not upload, bad clients...)."""


@dataclasses.dataclass(frozen=True)
class ParityConfig:
    """The round both sides run; defaults here, nowhere else."""

    clients: tuple[int, ...]  # training-user indices whose devices take part
    population: str = "parity"
    learning_rate: float = 0.5
    local_epochs: int = 2
    max_rows: int = 32
    data_seed: int = 7

    def __post_init__(self) -> None:
        if not self.clients or len(set(self.clients)) != len(self.clients) or min(self.clients) < 0:
            raise ValueError(f"clients must be distinct non-negative user indices, got {self.clients!r}")
        if not (self.learning_rate > 0 and np.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        for name in ("local_epochs", "max_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class ParityResult:
    round: int
    clients: tuple[int, ...]
    max_abs_diff: float  # largest |deployed - simulated| over every weight
    max_abs_update: float  # largest |deployed - initial|: the round really moved the model
    deployment_seconds: float
    simulation_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def max_abs_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """The largest absolute element difference of two weight lists of the same shapes (ValueError otherwise)."""
    if len(a) != len(b):
        raise ValueError(f"weight lists differ in length: {len(a)} vs {len(b)}")
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if np.shape(x) != np.shape(y):
            raise ValueError(f"weight {i} differs in shape: {np.shape(x)} vs {np.shape(y)}")
        if np.size(x):
            worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))))
    return worst


def deployment_round(
    admin: AdminClient,
    url: str,
    plan_dir: Path,
    initial: Sequence[np.ndarray],
    data_dir: Path,
    config: ParityConfig,
    work_dir: Path,
) -> tuple[int, list[np.ndarray]]:
    """Create a one-round float32 task, let one real device per client train and upload; (round, new weights)."""
    train = load_prepared(data_dir).train
    bad = [c for c in config.clients if c >= train.num_clients]
    if bad:
        raise ParityError(f"clients {bad} are not training users (there are {train.num_clients})")
    admin.create_task(
        plan_dir, initial, population=config.population, goal_count=len(config.clients), over_selection=1.0,
        selection_seconds=3000.0, report_seconds=3600.0, codec="float32", server_optimizer="fedavg", server_lr=1.0,
        local_epochs=config.local_epochs, learning_rate=config.learning_rate, max_rows=config.max_rows,
        max_rounds=1, seed=config.data_seed,
    )  # fmt: skip
    client = CoordinatorClient.connect(url)
    rounds: set[int] = set()
    try:
        for user in config.clients:
            device = Device(
                DeviceConfig(
                    population=config.population,
                    client=user,
                    directory=work_dir / f"device-{user:06d}",
                    retention_seconds=_RETENTION_S,
                    eligibility=EligibilityPolicy(min_separation_seconds=0.0),
                    codecs=("float32",),
                ),
                client,
                conditions=lambda: _ALWAYS,
            )
            try:
                if device.examples.total() == 0:
                    now = time.time()
                    device.add_examples([StoredExample(e, now) for e in train.client_examples(user)])
                outcome = device.step()
                if outcome.kind != ev.UPLOADED:
                    raise ParityError(f"device of user {user} did not upload: {outcome.kind} {outcome.detail}")
                [uploaded] = device.events.events(ev.UPLOADED, limit=1)
                rounds.add(int(uploaded.detail["round"]))
            finally:
                device.close()
    finally:
        client.close()
    if len(rounds) != 1:
        raise ParityError(f"the devices trained in different rounds {sorted(rounds)}")
    status = admin.wait_committed(config.population, 1, _COMMIT_TIMEOUT_S)
    return rounds.pop(), admin.model(config.population, status.model_version)


def simulation_round(
    data_dir: Path,
    plan_dir: Path,
    initial: Sequence[np.ndarray],
    round_num: int,
    config: ParityConfig,
    log_dir: Path,
) -> list[np.ndarray]:
    """One round of tff_sim's FedAvg over ``config.clients`` from ``initial``; the new trainable weights."""
    from model import ModelConfig
    from tff_sim.algorithms import build_process, model_fn_for
    from tff_sim.client_datasets import round_datasets
    from tff_sim.config import SimConfig
    from tff_sim.runtime import RuntimeConfig, tff_runtime

    manifest = load_manifest(plan_dir, verify=False)
    model_config = ModelConfig.from_dict(manifest.model_config)
    sim = SimConfig(
        algorithm="fedavg", rounds=1, clients_per_round=len(config.clients), local_epochs=config.local_epochs,
        client_lr=config.learning_rate, server_lr=1.0, batch_size=manifest.batch_size, seq_len=manifest.seq_len,
        max_client_rows=config.max_rows, seed=config.data_seed, aggregator="mean",
    )  # fmt: skip
    process = build_process(sim, model_fn_for(model_config, sim.seq_len, sim.seed))
    train = load_prepared(data_dir).train
    datasets, _tokens = round_datasets(
        train, list(config.clients), model_config, sim.seq_len, sim.batch_size, epochs=sim.local_epochs,
        seed=sim.seed, round_num=round_num, max_rows=sim.max_client_rows,
    )  # fmt: skip
    with tff_runtime(RuntimeConfig(log_dir=log_dir), default_num_clients=len(config.clients)):
        state = process.initialize()
        template = process.get_model_weights(state)
        if len(template.trainable) != len(initial):
            raise ParityError(f"TFF's model has {len(template.trainable)} weights, the task {len(initial)}")
        state = process.set_model_weights(
            state, template._replace(trainable=[np.asarray(w, np.float32) for w in initial])
        )
        state = process.next(state, datasets).state
        weights = process.get_model_weights(state).trainable
    return [np.asarray(w, np.float32) for w in weights]


def run_parity(
    url: str,
    api_key: str,
    plan_dir: Path,
    initial: Sequence[np.ndarray],
    data_dir: Path,
    config: ParityConfig,
    work_dir: Path,
) -> ParityResult:
    """Both rounds and their largest weight difference (see the module docstring)."""
    started = time.perf_counter()
    with AdminClient(url, api_key) as admin:
        round_num, deployed = deployment_round(admin, url, plan_dir, initial, data_dir, config, work_dir / "devices")
    deployed_s = time.perf_counter() - started
    started = time.perf_counter()
    simulated = simulation_round(data_dir, plan_dir, initial, round_num, config, work_dir / "tff_logs")
    result = ParityResult(
        round=round_num,
        clients=tuple(config.clients),
        max_abs_diff=max_abs_difference(deployed, simulated),
        max_abs_update=max_abs_difference(deployed, initial),
        deployment_seconds=round(deployed_s, 2),
        simulation_seconds=round(time.perf_counter() - started, 2),
    )
    logger.info("parity: %s", result)
    return result
