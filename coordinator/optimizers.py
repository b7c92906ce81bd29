"""Server optimizers applied at commit to the round's weighted mean delta.

- FedAvg (McMahan et al. 2017): ``new = old + lr * mean_delta``; lr 1 is TFF's
  FedAvg with server SGD at learning rate 1.
- FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization"): Adam on the
  pseudo-gradient ``g = -mean_delta`` with TFF's ``build_adam`` update (bias
  corrected step size, epsilon added to ``sqrt(v)``, default 1e-3), so a run
  here matches ``fedkeys sim run --algorithm fedadam``.
- Central DP (McMahan et al. 2018, "Learning Differentially Private Recurrent
  Language Models"): updates clipped to ``S`` and weighted uniformly; Gaussian
  noise of std ``z * S`` is added to the sum, which is divided by the goal count.

All pure numpy over float64 flat vectors, in the order of the model's weights.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

_DP_SALT = 0xD9015E


@dataclasses.dataclass(frozen=True)
class ServerOptimizerConfig:
    name: Literal["fedavg", "fedadam"] = "fedavg"
    learning_rate: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        if self.name not in ("fedavg", "fedadam"):
            raise ValueError(f"unknown server optimizer {self.name!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {self.beta1}, {self.beta2}")
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")


@dataclasses.dataclass(frozen=True)
class AdamState:
    """Adam's moments (flat float64, like the weights) and step count."""

    m: np.ndarray  # (P,)
    v: np.ndarray  # (P,)
    step: int

    @classmethod
    def zeros(cls, size: int) -> AdamState:
        return cls(np.zeros(size), np.zeros(size), 0)

    def to_bytes(self) -> bytes:
        return np.int64(self.step).tobytes() + self.m.astype("<f8").tobytes() + self.v.astype("<f8").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes, size: int) -> AdamState:
        if len(blob) != 8 + 16 * size:
            raise ValueError(f"stored Adam state has {len(blob)} bytes, expected {8 + 16 * size}")
        step = int(np.frombuffer(blob[:8], dtype="<i8")[0])
        moments = np.frombuffer(blob[8:], dtype="<f8")
        return cls(moments[:size].copy(), moments[size:].copy(), step)


def fedavg_step(weights: np.ndarray, mean_delta: np.ndarray, learning_rate: float) -> np.ndarray:
    """``weights + lr * mean_delta`` (all (P,))."""
    return weights + learning_rate * mean_delta


def fedadam_step(
    weights: np.ndarray, mean_delta: np.ndarray, state: AdamState, cfg: ServerOptimizerConfig
) -> tuple[np.ndarray, AdamState]:
    """One Adam step on the pseudo-gradient ``-mean_delta`` (all (P,)), as TFF's ``build_adam``."""
    g = -mean_delta
    step = state.step + 1
    m = cfg.beta1 * state.m + (1 - cfg.beta1) * g
    v = cfg.beta2 * state.v + (1 - cfg.beta2) * g * g
    lr = cfg.learning_rate * np.sqrt(1 - cfg.beta2**step) / (1 - cfg.beta1**step)
    return weights - lr * m / (np.sqrt(v) + cfg.epsilon), AdamState(m, v, step)


def dp_noised_mean(
    total: np.ndarray, *, goal: int, norm_bound: float, noise_multiplier: float, seed: int, round: int
) -> np.ndarray:
    """DP-FedAvg's mean: (sum of clipped, uniformly weighted updates + N(0, (z S)^2)) / goal.

    The noise comes from ``default_rng([seed, salt, round])``, so a round's noise is reproducible.
    """
    rng = np.random.default_rng([seed, _DP_SALT, round])
    noise = rng.normal(0.0, noise_multiplier * norm_bound, size=total.shape)  # (P,)
    return (total + noise) / goal
