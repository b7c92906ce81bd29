"""Privacy spent by central DP federated training, as (epsilon, delta).

DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent
Language Models") releases, each round, the sum of the sampled users' clipped
updates plus Gaussian noise, divided by a fixed denominator. Each round is a
subsampled Gaussian mechanism at the user level; the rounds compose.

The mechanism of one round, and the derivation of what is accounted:

- A set B of exactly K of the N users is sampled uniformly without
  replacement (fixed size: the simulation draws K clients; a deployed round
  sums the updates of the K it received).
- Each update is clipped to L2 norm S, weighted uniformly, and
  ``sum_{i in B} u_i + N(0, (z S)^2 I)`` is released, divided by a public
  constant (K or the round's goal: post-processing, it costs nothing).
- Fixed-size sampling needs the *replace-one* neighbouring relation (N is
  public; D' replaces one user's data): the subsampling theorem for sampling
  without replacement (Wang, Balle & Kasiviswanathan 2019, "Subsampled Rényi
  Differential Privacy and Analytical Moments Accountant", Thm. 27, which
  ``dp_accounting``'s ``SampledWithoutReplacementDpEvent`` implements) is
  stated for it, and ``dp_accounting`` refuses that event under add-or-remove.
- Under replace-one the sum moves by ``u_j - u'_j``, whose norm is up to
  **2S**, not S. ``GaussianDpEvent(m)`` means noise std = m x the L2
  sensitivity, so the event is ``GaussianDpEvent(z S / 2S) = GaussianDpEvent(z / 2)``.
  Accounting ``GaussianDpEvent(z)`` here (as fedkeys did before) treats the
  sensitivity as S and understates epsilon: N=715, K=20, z=1, 100 rounds,
  delta=N^-1.1 gave 2.5 where the mechanism's epsilon is 14.0.
- Add-or-remove with sensitivity S and ``GaussianDpEvent(z)`` is the right
  account only for *Poisson* sampling (each user joins independently with
  probability K/N; 1.5 in the example above). fedkeys samples a fixed number,
  so that account does not apply.

The assumption every reported epsilon carries (:data:`SAMPLING_ASSUMPTION`):
each released round's contributors are a uniformly random subset of the N
users, each user contributes at most one update a round. Availability models
that make sampling non-uniform (``diurnal``) and devices that fill a round
with copies of themselves (Sybils) are outside this analysis; the few
clipped-count bits released by the simulation's adaptive clipping are treated
as part of the noise budget the way TFF's ``dp_aggregator`` sizes them.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import dp_accounting
from dp_accounting import rdp

SAMPLING_ASSUMPTION = (
    "user-level DP, replace-one adjacency, RDP accountant: each released round sums the clipped (L2 <= S) "
    "updates of a uniformly random fixed-size subset of the N users (sampling without replacement, one update "
    "per user a round) with Gaussian noise of std z*S against sensitivity 2S"
)


def dp_epsilon(*, noise_multiplier: float, clients_per_round: int, population: int, rounds: int, delta: float) -> float:
    """Epsilon after ``rounds`` rounds of K-of-N sampled Gaussian aggregation (see the module's derivation)."""
    if rounds < 1:
        raise ValueError(f"rounds must be positive, got {rounds}")
    return dp_epsilon_of_rounds(
        noise_multiplier=noise_multiplier, population=population, sample_sizes=[clients_per_round] * rounds, delta=delta
    )


def dp_epsilon_of_rounds(
    *, noise_multiplier: float, population: int, sample_sizes: Sequence[int], delta: float
) -> float:
    """Epsilon after one released round per entry of ``sample_sizes`` (its K of N); 0 when nothing was released.

    A coordinator's committed rounds sum different numbers of updates (a round
    commits at its deadline with fewer than its goal); each is its own event.
    """
    if noise_multiplier <= 0:
        raise ValueError(f"noise_multiplier must be positive, got {noise_multiplier}")
    if population < 1:
        raise ValueError(f"population must be positive, got {population}")
    for k in sample_sizes:
        if not 0 < k <= population:
            raise ValueError(f"clients_per_round must be in [1, {population}], got {k}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not sample_sizes:
        return 0.0
    accountant = rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier / 2)  # replace-one sensitivity is 2S, noise std z*S
    for k, count in sorted(collections.Counter(sample_sizes).items()):
        per_round = dp_accounting.SampledWithoutReplacementDpEvent(population, k, gaussian)
        accountant.compose(dp_accounting.SelfComposedDpEvent(per_round, count))
    return float(accountant.get_epsilon(delta))


def default_delta(population: int) -> float:
    """delta below 1/N, the usual requirement for a meaningful guarantee: 1 / N^1.1."""
    if population < 1:
        raise ValueError(f"population must be positive, got {population}")
    return float(population**-1.1)
