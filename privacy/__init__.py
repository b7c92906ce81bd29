"""Differential-privacy accounting shared by the simulation and the coordinator (numpy + dp-accounting only).

Offers :func:`dp_epsilon` (K of N clients a round, a fixed count of rounds),
:func:`dp_epsilon_of_rounds` (one sample size per released round, what a
coordinator has committed), :func:`default_delta`, and :data:`SAMPLING_ASSUMPTION`,
the sentence every reported epsilon carries. No TensorFlow: the coordinator imports it.
"""

from privacy.accounting import SAMPLING_ASSUMPTION, default_delta, dp_epsilon, dp_epsilon_of_rounds

__all__ = ["SAMPLING_ASSUMPTION", "default_delta", "dp_epsilon", "dp_epsilon_of_rounds"]
