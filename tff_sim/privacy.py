"""Privacy spent by central DP federated training, as (epsilon, delta).

DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent
Language Models") adds Gaussian noise to the clipped sum of client updates;
each round is a subsampled Gaussian mechanism at the user level. fedkeys
samples a fixed number of clients per round without replacement, so the
accounting uses that event (replace-one neighbouring relation) with the RDP
accountant of the ``dp-accounting`` package, composed over the rounds.

Caveats stated where they are used: availability models that make sampling
non-uniform (``diurnal``) are not covered by this analysis, and the few
clients-clipped counts released by adaptive clipping are treated as part of the
noise budget the way TFF's ``dp_aggregator`` sizes them.
"""

from __future__ import annotations

import dp_accounting
from dp_accounting import rdp


def dp_epsilon(*, noise_multiplier: float, clients_per_round: int, population: int, rounds: int, delta: float) -> float:
    """Epsilon after ``rounds`` rounds of K-of-N sampled Gaussian aggregation."""
    if noise_multiplier <= 0:
        raise ValueError(f"noise_multiplier must be positive, got {noise_multiplier}")
    if not 0 < clients_per_round <= population:
        raise ValueError(f"clients_per_round must be in [1, {population}], got {clients_per_round}")
    if rounds < 1:
        raise ValueError(f"rounds must be positive, got {rounds}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    accountant = rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    per_round = dp_accounting.SampledWithoutReplacementDpEvent(
        population, clients_per_round, dp_accounting.GaussianDpEvent(noise_multiplier)
    )
    accountant.compose(dp_accounting.SelfComposedDpEvent(per_round, rounds))
    return float(accountant.get_epsilon(delta))


def default_delta(population: int) -> float:
    """delta below 1/N, the usual requirement for a meaningful guarantee: 1 / N^1.1."""
    if population < 1:
        raise ValueError(f"population must be positive, got {population}")
    return float(population**-1.1)
