"""Simulation/deployment parity: one deployed round equals one TFF round, up to float noise.

What lets a user trust a simulation before shipping: with the same clients
and round, and the same client-training contract (``wire.contract``: local
epochs, learning rate, row cap, data seed, codec, clip), the plan's batch size
and sequence length, ONE round through the coordinator — emulated phones
training the exported ``train.tflite`` in LiteRT and uploading over HTTP,
FedAvg weighted by tokens at server rate 1 (McMahan et al. 2017; Bonawitz et
al. 2019) — ends at the same global model as ONE round of TFF's own FedAvg
process (``tff_sim.algorithms``) started from the coordinator task's initial
weights.

Both sides build a client's rows the contract's way (``wire.row_order``, where
``client`` is the user's index in the training split). With a compressed codec
(``quant8``...) the simulation encodes each client's delta with the devices'
codec in TensorFlow (``tff_sim.aggregators_codec``) keyed by the seed that
client's phone was assigned (read from its upload's header), so both sides
draw the same rotations and rounding. The remaining difference is the order of
float additions (LiteRT vs TF kernels, server sums), ~1e-7..1e-6; with a
quantized codec it can also flip a rounding decision whose draw lies within
that noise of its threshold, a rare jump of one quantization step.

This module only composes: the coordinator (a running server), devices
(``device_runtime.Device``), TFF (``tff_sim``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_tools import load_prepared
from device_runtime import CoordinatorClient, Device, DeviceConditions, DeviceConfig, EligibilityPolicy, StoredExample
from device_runtime import event_log as ev
from fedkeys.admin_client import AdminClient
from fedkeys_errors import FedkeysError
from wire.contract import ClientTraining
from wire.manifest import load_manifest
from wire.protocol import UploadResponse, task_training_fields
from wire.update import UpdateMessage, decode_update

logger = logging.getLogger(__name__)

_ALWAYS = DeviceConditions(idle=True, charging=True, unmetered=True, battery=1.0)
_RETENTION_S = 1e12  # keep every example: the device must see exactly the user's corpus messages
_COMMIT_TIMEOUT_S = 300.0


class ParityError(FedkeysError, ValueError):
    """The parity round could not run as configured (a device did not upload, bad clients...)."""


DEFAULT_TRAINING = ClientTraining(local_epochs=2, max_rows=32, data_seed=7)


@dataclasses.dataclass(frozen=True)
class ParityConfig:
    """The round both sides run; defaults here, nowhere else."""

    clients: tuple[int, ...]  # training-user indices whose devices take part
    population: str = "parity"
    training: ClientTraining = DEFAULT_TRAINING

    def __post_init__(self) -> None:
        if not self.clients or len(set(self.clients)) != len(self.clients) or min(self.clients) < 0:
            raise ValueError(f"clients must be distinct non-negative user indices, got {self.clients!r}")
        if self.training.max_rows is None:
            raise ValueError("training.max_rows must be set: a deployed task caps the rows a device trains on")


@dataclasses.dataclass(frozen=True)
class DeployedRound:
    """What the deployed round produced, and what the simulation needs to replay it."""

    round: int
    weights: list[np.ndarray]
    codec_seeds: dict[int, tuple[int, int]]  # training user -> (rotation, rounding) seeds of its upload's header
    upload_bytes: dict[int, int]  # training user -> bytes its phone uploaded


@dataclasses.dataclass(frozen=True)
class ParityResult:
    round: int
    clients: tuple[int, ...]
    codec: str
    max_abs_diff: float  # largest |deployed - simulated| over every weight
    max_abs_update: float  # largest |deployed - initial|: the round really moved the model
    deployed_upload_bytes: int  # the largest upload of the round's phones
    simulated_upload_bytes: int  # what ``sim run`` reports a client uploads with this codec
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


class _RecordingClient(CoordinatorClient):
    """A coordinator client that keeps the header of every update it uploads (parity's own devices only)."""

    uploads: list[UpdateMessage]

    def upload(self, session_id: str, token: str, blob: bytes) -> UploadResponse:
        self.uploads.append(decode_update(blob))
        return super().upload(session_id, token, blob)


def deployment_round(
    admin: AdminClient,
    url: str,
    plan_dir: Path,
    initial: Sequence[np.ndarray],
    data_dir: Path,
    config: ParityConfig,
    work_dir: Path,
) -> DeployedRound:
    """Create a one-round task with ``config.training``, let one real device per client train and upload."""
    train = load_prepared(data_dir).train
    bad = [c for c in config.clients if c >= train.num_clients]
    if bad:
        raise ParityError(f"clients {bad} are not training users (there are {train.num_clients})")
    admin.create_task(
        plan_dir, initial, population=config.population, goal_count=len(config.clients), over_selection=1.0,
        selection_seconds=3000.0, report_seconds=3600.0, server_optimizer="fedavg", server_lr=1.0, max_rounds=1,
        **task_training_fields(config.training),
    )  # fmt: skip
    client = _RecordingClient.connect(url)
    assert isinstance(client, _RecordingClient)
    client.uploads = []
    rounds: set[int] = set()
    seeds: dict[int, tuple[int, int]] = {}
    sizes: dict[int, int] = {}
    try:
        for user in config.clients:
            device = Device(
                DeviceConfig(
                    population=config.population,
                    client=user,
                    directory=work_dir / f"device-{user:06d}",
                    retention_seconds=_RETENTION_S,
                    eligibility=EligibilityPolicy(min_separation_seconds=0.0),
                    codecs=(config.training.codec,),
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
                message = client.uploads[-1]
                rounds.add(message.round)
                seeds[user], sizes[user] = (message.rotation_seed or 0, message.seed), message.nbytes
            finally:
                device.close()
    finally:
        client.close()
    if len(rounds) != 1:
        raise ParityError(f"the devices trained in different rounds {sorted(rounds)}")
    status = admin.wait_committed(config.population, 1, _COMMIT_TIMEOUT_S)
    return DeployedRound(rounds.pop(), admin.model(config.population, status.model_version), seeds, sizes)


def simulation_round(
    data_dir: Path,
    plan_dir: Path,
    initial: Sequence[np.ndarray],
    round_num: int,
    config: ParityConfig,
    log_dir: Path,
    codec_seeds: Mapping[int, tuple[int, int]] | None = None,
) -> list[np.ndarray]:
    """One round of tff_sim's FedAvg over ``config.clients`` from ``initial``; the new trainable weights.

    ``codec_seeds`` (training user -> (rotation seed, rounding seed)) key each client's encoding when
    ``config.training.codec`` compresses.
    """
    from model import ModelConfig
    from tff_sim.aggregators_codec import client_input
    from tff_sim.algorithms import build_process, model_fn_for, uses_codec_seeds
    from tff_sim.client_datasets import round_datasets
    from tff_sim.config import SimConfig
    from tff_sim.runtime import RuntimeConfig, tff_runtime

    manifest = load_manifest(plan_dir, verify=False)
    model_config = ModelConfig.from_dict(manifest.model_config)
    sim = SimConfig(
        algorithm="fedavg", rounds=1, clients_per_round=len(config.clients), training=config.training,
        server_lr=1.0, batch_size=manifest.batch_size, seq_len=manifest.seq_len,
    )  # fmt: skip
    process = build_process(sim, model_fn_for(model_config, sim.seq_len, sim.seed))
    train = load_prepared(data_dir).train
    t = sim.training
    datasets, _tokens = round_datasets(
        train, list(config.clients), model_config, sim.seq_len, sim.batch_size, epochs=t.local_epochs,
        seed=t.data_seed, round_num=round_num, max_rows=t.max_rows,
    )  # fmt: skip
    if uses_codec_seeds(sim):
        if codec_seeds is None or set(codec_seeds) != set(config.clients):
            raise ParityError(f"a {t.codec} round needs every client's codec seed, got {codec_seeds!r}")
        datasets = [client_input(d, codec_seeds[c]) for d, c in zip(datasets, config.clients, strict=True)]
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
    from tff_sim.aggregators import upload_bytes

    started = time.perf_counter()
    with AdminClient(url, api_key) as admin:
        deployed = deployment_round(admin, url, plan_dir, initial, data_dir, config, work_dir / "devices")
    deployed_s = time.perf_counter() - started
    started = time.perf_counter()
    simulated = simulation_round(
        data_dir, plan_dir, initial, deployed.round, config, work_dir / "tff_logs", deployed.codec_seeds
    )
    codec = config.training.codec
    result = ParityResult(
        round=deployed.round,
        clients=tuple(config.clients),
        codec=codec,
        max_abs_diff=max_abs_difference(deployed.weights, simulated),
        max_abs_update=max_abs_difference(deployed.weights, initial),
        deployed_upload_bytes=max(deployed.upload_bytes.values()),
        simulated_upload_bytes=upload_bytes(codec if codec != "float32" else "mean", [np.shape(w) for w in initial]),
        deployment_seconds=round(deployed_s, 2),
        simulation_seconds=round(time.perf_counter() - started, 2),
    )
    logger.info("parity: %s", result)
    return result
