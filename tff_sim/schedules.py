"""Per-round learning-rate schedules for the client and the server optimizer.

Federated training of language models trains faster and ends better with a
short warmup and a decay of the learning rates over the run (Reddi et al.
2021, "Adaptive Federated Optimization", Sec. 5 and App. D; Charles et al.
2021, "On Large-Cohort Training for Federated Learning"): the warmup keeps the
first adaptive server steps, whose second-moment estimates are still poor, from
throwing the model off its initialization, and the decay lets the last rounds
settle instead of bouncing between clients' optima (client drift).

A schedule is a pure function of the round number and the run's length, so a
resumed run and a fresh run use the same rate in every round.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, get_args

from fedkeys_errors import FedkeysError

Decay = Literal["constant", "cosine", "linear"]
DECAYS: tuple[str, ...] = get_args(Decay)


class ScheduleError(FedkeysError, ValueError):
    """A schedule that cannot be built: the message names the bad value."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A linear warmup over ``warmup_rounds``, then ``decay`` down to ``final_scale`` at the last round.

    The rate of round ``r`` (1-based) is ``base * scale_at(r, rounds)``.
    """

    warmup_rounds: int = 0
    decay: Decay = "constant"
    final_scale: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.warmup_rounds, int) or self.warmup_rounds < 0:
            raise ScheduleError(f"warmup rounds must be a non-negative integer, got {self.warmup_rounds!r}")
        if self.decay not in DECAYS:
            raise ScheduleError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if not 0.0 <= self.final_scale <= 1.0:
            raise ScheduleError(f"final scale must be in [0, 1], got {self.final_scale!r}")

    @property
    def is_constant(self) -> bool:
        return self.warmup_rounds == 0 and self.decay == "constant"


def scale_at(schedule: Schedule, round_num: int, rounds: int) -> float:
    """The learning-rate multiplier of round ``round_num`` (1-based) of a ``rounds``-round run.

    Warmup: rounds 1..W scale by r / W (so round 1 already trains). Decay: from
    1 right after the warmup to ``final_scale`` at round ``rounds``, cosine
    (``f + (1 - f) * (1 + cos(pi * t)) / 2``) or linear in ``t``, the share of
    the decay phase done.

    Example (checked in the tests): warmup 2, cosine to 0.1 over 6 rounds gives
    0.5, 1.0, then 1.0, 0.775, 0.325 and 0.1 (rounds 3..6 have t = 0, 1/3, 2/3, 1).
    """
    if not 1 <= round_num <= max(rounds, round_num):
        raise ScheduleError(f"round must be >= 1, got {round_num}")
    w = schedule.warmup_rounds
    if round_num <= w:
        return round_num / w
    if schedule.decay == "constant":
        return 1.0
    span = rounds - w - 1
    t = 1.0 if span <= 0 else min(1.0, (round_num - w - 1) / span)
    f = schedule.final_scale
    if schedule.decay == "cosine":
        return f + (1.0 - f) * (1.0 + math.cos(math.pi * t)) / 2.0
    return 1.0 - (1.0 - f) * t
