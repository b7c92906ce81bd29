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
  The noise is drawn from a generator seeded by the OS CSPRNG (:func:`dp_noise`),
  never from the task's seed: devices know that seed, and a device that can
  rebuild the noise subtracts it and reads the exact sum of the others' updates.

All pure numpy over float64 flat vectors, in the order of the model's weights
(except :func:`dp_noise`, whose whole point is that nothing reproduces it).
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from typing import Literal

import numpy as np


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


def fedadam_max_step(cfg: ServerOptimizerConfig, step: int) -> float:
    """The largest change of one coordinate that Adam's ``step``-th update can make (``inf`` if beta2 is 0).

    With ``m_t = sum_i (1-b1) b1^(t-i) g_i`` and ``v_t = sum_i (1-b2) b2^(t-i) g_i^2``,
    Cauchy-Schwarz gives ``|m_t| <= (1-b1) / sqrt(1-b2) * sqrt(sum_{j<t} r^j) * sqrt(v_t)``
    with ``r = b1^2 / b2``, whatever the gradients; the step is
    ``lr sqrt(1-b2^t) / (1-b1^t) * m_t / (sqrt(v_t) + eps)``, so it is at most
    ``lr sqrt(1-b2^t) / (1-b1^t) * (1-b1) / sqrt(1-b2) * sqrt(sum_{j<t} r^j)``:
    exactly ``lr`` at t=1, about 7.3 ``lr`` for TFF's betas as t grows (Kingma &
    Ba 2015 §2.1 bound the step the same way). A larger coordinate change means
    the optimizer itself went wrong.
    """
    if step < 1:
        raise ValueError(f"Adam steps count from 1, got {step}")
    if cfg.beta2 == 0:
        return math.inf
    r = cfg.beta1**2 / cfg.beta2
    geometric = float(step) if r == 1 else (1 - r**step) / (1 - r)
    correction = math.sqrt(1 - cfg.beta2**step) / (1 - cfg.beta1**step)
    return cfg.learning_rate * correction * (1 - cfg.beta1) / math.sqrt(1 - cfg.beta2) * math.sqrt(geometric)


def dp_noise(size: int, std: float) -> np.ndarray:
    """``(size,)`` Gaussian noise of standard deviation ``std`` that no seed reproduces.

    The generator is seeded with 128 bits from the OS CSPRNG (``secrets``) at each
    call. DP-FedAvg's guarantee rests on the noise being unknown to everyone who
    sees the noised model (every device downloads it): noise drawn from the task
    seed and the round number, both sent to devices, was removable to 1e-7
    (issue 14). Not reproducible by design, so tests check it by its statistics
    and by the attack it defeats.
    """
    if size < 0 or not (math.isfinite(std) and std >= 0):
        raise ValueError(f"need size >= 0 and a finite std >= 0, got {size}, {std}")
    return np.random.default_rng(secrets.randbits(128)).normal(0.0, std, size=size)  # (size,)


def dp_noised_mean(total: np.ndarray, noise: np.ndarray, *, goal: int) -> np.ndarray:
    """DP-FedAvg's mean: (sum of clipped, uniformly weighted updates + noise) / goal, all (P,).

    Dividing by the fixed goal, not the count received, keeps the sensitivity
    of the released value at (2S under replace-one) / goal (McMahan et al. 2018).
    """
    if goal < 1:
        raise ValueError(f"goal must be >= 1, got {goal}")
    if noise.shape != total.shape:
        raise ValueError(f"noise has shape {noise.shape}, the sum {total.shape}")
    return (total + noise) / goal
