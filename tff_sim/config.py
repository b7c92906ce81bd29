"""Typed configuration of a federated simulation; defaults in this one place.

How a client trains and uploads (local epochs, learning rate, row cap, data
seed, codec, clip) is the client-training contract, ``wire.contract``, which a
deployed task carries too; the rest is the simulation's own.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

from tff_sim.availability import AvailabilityConfig
from tff_sim.schedules import Schedule
from wire.contract import ClientTraining

SERVER_AGGREGATORS: tuple[str, ...] = ("mean", "dp", "secure")  # how the server combines updates (tff_sim.aggregators)
# ``sim run --aggregator``: the server's aggregator, or a device codec (quantN: the token-weighted mean of updates
# each compressed as a phone compresses it, ``ClientTraining.codec``); see ``split_aggregator``.
AGGREGATORS: tuple[str, ...] = ("mean", "quant8", "quant4", "quant2", "dp", "secure")
_DP_ALGORITHMS = ("fedavg", "fedavgm", "fedadam", "fedyogi")

Algorithm = Literal["fedavg", "fedsgd", "fedavgm", "fedadam", "fedyogi", "fedprox"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)

# Server learning rates that work out of the box for each algorithm (Reddi et al.
# 2021 tune FedAdam/FedYogi server rates around 1e-2 with epsilon 1e-3).
DEFAULT_SERVER_LR: dict[str, float] = {
    "fedavg": 1.0,
    "fedsgd": 1.0,
    "fedavgm": 1.0,
    "fedadam": 0.01,
    "fedyogi": 0.01,
    "fedprox": 1.0,
}


def split_aggregator(name: str) -> tuple[str, str]:
    """``--aggregator NAME`` as (server aggregator, device codec): quant8 -> (mean, quant8), dp -> (dp, float32)."""
    if name not in AGGREGATORS:
        raise ValueError(f"aggregator must be one of {AGGREGATORS}, got {name!r}")
    return (name, "float32") if name in SERVER_AGGREGATORS else ("mean", name)


RECIPE_SOURCE = (
    "FedAdam (Reddi et al. 2021): server lr 0.01, epsilon 1e-5; client SGD lr 0.5, batch 8, 1 local epoch, "
    "10 clients a round. Measured on Shakespeare (vocab 10k, small model, 60 rounds): test recall@1 0.0520 "
    "and perplexity 537, against FedYogi's 0.0437 and 645 (same rates) and FedAvg's 0.0426 and 600 (client lr "
    "1.0, batch 8); FedAdam leaves the unigram plateau by round 40, FedAvg by round 60. Clients a round, local "
    "epochs and client lr by `sim sweep` from a model pretrained on proxy users (vocab 5k, FedAvg, 16 rounds, "
    "bench/results/sweep_pretrained_5k_*.md): validation recall@1 0.1029 at K=10 E=1, 0.1032 at K=30 E=1 (3x "
    "the device work), 0.1024 at K=10 E=2, 0.1032 at K=30 E=2 (2.4x the time); client lr 0.5/1/2 at K=30: "
    "0.1032/0.1033/0.1029, all within the noise of 108 validation users, so the cheapest stays. Starting from "
    "a pretrained model (--init-from) matters far more: +0.07 recall@1 where these choices move 0.001."
)
"""Where the default recipe below comes from, shown in ``sim run --help``."""


@dataclasses.dataclass(frozen=True)
class SimConfig:
    algorithm: Algorithm = "fedadam"
    rounds: int = 20
    clients_per_round: int = 10
    training: ClientTraining = dataclasses.field(default_factory=ClientTraining)  # as deployed tasks carry it
    server_lr: float | None = None  # None: DEFAULT_SERVER_LR[algorithm]
    server_momentum: float = 0.9  # fedavgm
    prox_strength: float = 0.01  # fedprox (mu)
    batch_size: int = 8  # fixed by the plan in deployment (its manifest)
    seq_len: int = 20
    preset: str = "small"
    seed: int = 0  # sampling, model initialization, evaluation users, codec seeds (rows: training.data_seed)
    eval_every: int = 5
    checkpoint_every: int = 5  # TFF's program state manager writes a SavedModel: seconds per save
    max_eval_clients: int | None = None
    aggregator: str = "mean"
    dp_noise_multiplier: float = 1.0
    secure_clip: float = 1.0  # ``secure``: L2 clip of each update (a deployed task's secagg_clip, same default)
    server_epsilon: float = 1e-5  # fedadam / fedyogi (Reddi et al. 2021 tune 1e-3 .. 1e-5; 1e-3 barely moved here)
    client_lr_schedule: Schedule = dataclasses.field(default_factory=Schedule)
    server_lr_schedule: Schedule = dataclasses.field(default_factory=Schedule)
    availability: AvailabilityConfig = dataclasses.field(default_factory=AvailabilityConfig)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        for name in (
            "rounds",
            "clients_per_round",
            "batch_size",
            "seq_len",
            "eval_every",
            "checkpoint_every",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SimConfig.{name} must be a positive integer, got {value!r}")
        for name in ("prox_strength", "secure_clip", "server_epsilon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SimConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.server_lr is not None and not self.server_lr > 0:
            raise ValueError(f"SimConfig.server_lr must be positive, got {self.server_lr!r}")
        if not 0 <= self.server_momentum < 1:
            raise ValueError(f"SimConfig.server_momentum must be in [0, 1), got {self.server_momentum!r}")
        if self.aggregator not in SERVER_AGGREGATORS:
            raise ValueError(f"aggregator must be one of {SERVER_AGGREGATORS}, got {self.aggregator!r}")
        if self.training.codec != "float32" and self.aggregator != "mean":
            raise ValueError(f"codec {self.training.codec!r} works with aggregator 'mean', not {self.aggregator!r}")
        if self.training.clip_norm is not None and self.training.codec == "float32":
            raise ValueError("training.clip_norm is applied by the device codec: pick a quantN codec to clip")
        if self.aggregator == "dp" and self.algorithm not in _DP_ALGORITHMS:
            raise ValueError(f"aggregator 'dp' works with {_DP_ALGORITHMS}, not {self.algorithm!r}")
        if not self.dp_noise_multiplier > 0:
            raise ValueError(f"SimConfig.dp_noise_multiplier must be positive, got {self.dp_noise_multiplier!r}")
        if self.aggregator == "dp" and not self.dp_noise_multiplier < 0.1 * self.clients_per_round:
            # TFF's adaptive clipping spends part of the noise on the clipped count (stddev 0.05 K).
            raise ValueError(
                f"dp_noise_multiplier {self.dp_noise_multiplier} needs more than "
                f"{10 * self.dp_noise_multiplier:g} clients per round, got {self.clients_per_round}"
            )
        if self.max_eval_clients is not None and self.max_eval_clients < 1:
            raise ValueError(f"SimConfig.max_eval_clients must be positive, got {self.max_eval_clients!r}")

    @property
    def aggregator_name(self) -> str:
        """The ``--aggregator`` name this configuration runs (the codec when clients compress)."""
        return self.aggregator if self.training.codec == "float32" else self.training.codec

    @property
    def max_client_weight(self) -> float | None:
        """The most tokens a client can weigh in a round (rows cap x seq_len x epochs); None if rows are uncapped."""
        t = self.training
        if t.max_rows is None:
            return None
        return float(t.max_rows * self.seq_len * t.local_epochs)

    @property
    def effective_server_lr(self) -> float:
        return self.server_lr if self.server_lr is not None else DEFAULT_SERVER_LR[self.algorithm]

    def to_dict(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["server_lr"] = self.effective_server_lr
        return data
