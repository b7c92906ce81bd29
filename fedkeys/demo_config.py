"""The demo's settings (``fedkeys demo``): typed, validated when built, defaults in this one place.

Sized so the whole demo runs in under 15 minutes on two CPU cores: a smaller
vocabulary than ``data prepare``'s default, a short central pretraining on
users set aside as proxy data (Xu et al. 2023), then a few rounds of ten
clients from that model. Imports nothing heavy, so the CLI can read the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from wire.contract import ClientTraining

POPULATION = "keyboard"  # the population the demo deploys to

_POSITIVE_INTS = (
    "vocab_size", "seq_len", "batch_size", "ngram_order", "pretrain_epochs", "rounds", "clients_per_round",
    "local_epochs", "max_rows", "eval_every", "devices", "concurrency",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Everything the demo does; defaults (sized for < 15 minutes on 2 cores) here, nowhere else."""

    corpus: str = "shakespeare"  # a data prepare corpus spec
    data: Path | None = None  # an already prepared corpus instead (skips step 1)
    vocab_size: int = 5000
    min_words: int = 20
    preset: str = "small"
    seq_len: int = 20
    batch_size: int = 16
    ngram_order: int = 3
    proxy_fraction: float = 0.4  # users set aside as public/proxy data for pretraining (never evaluated)
    pretrain_epochs: int = 4  # on the proxy users: 5 reached test recall@1 0.105 against the 3-gram's 0.110
    pretrain_max_steps: int | None = None  # per epoch
    pretrain_lr: float = 3e-3  # Adam
    init_from: Path | None = None  # a pretrained run instead of the pretraining step
    rounds: int = 8
    clients_per_round: int = 10
    local_epochs: int = 1
    client_lr: float = 0.5
    max_rows: int = 64
    eval_every: int = 2
    eval_users: int | None = 40  # validation users scored after each evaluated round (a fixed sample); None: all
    devices: int = 120
    availability: str = "diurnal"
    speedup: float = 720.0  # emulated seconds per wall second of the phones' clock: a day in two minutes
    dropout: float = 0.1
    codec: str = "quant8"
    concurrency: int = 2
    fleet_timeout_s: float = 900.0
    parity_clients: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DemoConfig.{name} must be a positive integer, got {value!r}")
        if self.eval_users is not None and self.eval_users < 1:
            raise ValueError(f"DemoConfig.eval_users must be positive, got {self.eval_users!r}")
        if self.pretrain_max_steps is not None and self.pretrain_max_steps < 1:
            raise ValueError(f"DemoConfig.pretrain_max_steps must be positive, got {self.pretrain_max_steps!r}")
        if not 0.0 <= self.proxy_fraction < 0.8:
            raise ValueError(f"DemoConfig.proxy_fraction must be in [0, 0.8), got {self.proxy_fraction!r}")
        if self.parity_clients < 0:
            raise ValueError(f"DemoConfig.parity_clients must be >= 0, got {self.parity_clients!r}")
        for name in ("client_lr", "pretrain_lr", "speedup", "fleet_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DemoConfig.{name} must be positive, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout <= 1.0:
            raise ValueError(f"DemoConfig.dropout must be in [0, 1], got {self.dropout!r}")
        if self.availability not in ("always", "diurnal"):
            raise ValueError(f"DemoConfig.availability must be 'always' or 'diurnal', got {self.availability!r}")
        if self.codec not in ("float32", "quant8", "quant4", "quant2"):
            raise ValueError(f"DemoConfig.codec must be float32, quant8, quant4 or quant2, got {self.codec!r}")
        if self.clients_per_round > self.devices:
            raise ValueError(f"clients_per_round {self.clients_per_round} exceeds devices {self.devices}")

    @property
    def training(self) -> ClientTraining:
        """The clients' training, the same in the demo's simulation and its deployment (``wire.contract``)."""
        return ClientTraining(
            local_epochs=self.local_epochs,
            learning_rate=self.client_lr,
            max_rows=self.max_rows,
            data_seed=self.seed,
            codec=self.codec,
        )

    def task_fields(self) -> dict[str, Any]:
        """The deployed task's settings (``TaskCreate`` fields), for the demo and ``bench/fleet_pace.py``.

        A round commits at its goal, or at the deadline with ``min_reports``: 80% of the goal, so a round whose
        devices aborted leaves its 8 or 9 of 10 uploads committed rather than thrown away (Bonawitz et al.
        2019, §2.2). Selection is 90 s because the fleet needs ~20 s to start (TF import, 120 example stores).
        """
        from wire.protocol import task_training_fields  # lazily: `suggest` must not load pydantic

        return {
            "population": POPULATION,
            "goal_count": self.clients_per_round,
            "min_reports": math.ceil(0.8 * self.clients_per_round),
            "over_selection": 1.3,
            "selection_seconds": 90.0,
            "report_seconds": 120.0,
            "max_rounds": self.rounds,
            **task_training_fields(self.training),
        }
