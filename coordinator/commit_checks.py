"""What a commit may write: the checks between a round's mean and the next model version.

Every update was validated and bounded on the way in (``coordinator.validation``
clips or refuses above the task's ``norm_bound`` S; a secure round's devices
clip to ``secagg_clip`` on the ring's grid). So the mean of a round is known in
advance to lie in a ball, and the server step that follows from it too:

- FedAvg: the weighted mean of vectors of norm <= S has norm <= S (the norm is
  convex), so ``||new - old|| = lr ||mean|| <= lr S``.
- DP-FedAvg: the un-noised sum over the goal has norm <= S (received <= goal);
  the noise is the server's own and is not bounded, only checked finite.
- FedAdam: whatever the mean, one coordinate moves at most
  ``optimizers.fedadam_max_step`` (Adam's step is scale-free); the mean's bound
  still matters, since an outsized mean would poison the stored moments.
- Secure rounds: the grid step is ``2 clip / (2^bits - 1)`` and stochastic
  rounding moves a coordinate by less than one step, so the decoded weighted mean
  of n devices with weights W (in units of max_weight) lies within
  ``clip + n sqrt(P) step / W`` (``secagg.bounds.mean_l2_bound``); a level that
  wrapped the ring lands far outside (and ``secagg.bounds.check_sum`` refused
  that sum before the commit).

The bound of a task's mechanism is ``coordinator.aggregators.update_bound``.
A mean or step outside its bound, or a non-finite model, is not committed:
:class:`CommitRefused` names why and the round is abandoned instead (Bonawitz et
al. 2019 §4.3: the server does not trust devices; one upload of 1e30 values
with weight 32 used to commit a model with |w| = 9.7e29, issue 14).
"""

from __future__ import annotations

import numpy as np

from coordinator.errors import CoordinatorRefusal

_RTOL = 1e-5  # updates are clipped in float32: a clipped norm can exceed S by a few float32 ulps
_EPS64 = float(np.finfo(np.float64).eps)

COMMIT_REASONS: tuple[str, ...] = ("not_finite", "mean_too_large", "step_too_large")


class CommitRefused(CoordinatorRefusal):
    """A round whose mean or next model falls outside what its validated updates allow; it is abandoned."""


def check_mean(mean: np.ndarray, bound: float) -> None:
    """Refuse a round mean ``(P,)`` that is not finite or whose L2 norm exceeds ``bound``."""
    bad = int(np.size(mean) - np.count_nonzero(np.isfinite(mean)))
    if bad:
        raise CommitRefused("not_finite", f"the round's mean has {bad} non-finite coordinates")
    norm = float(np.linalg.norm(mean))
    if not norm <= bound * (1 + _RTOL):
        raise CommitRefused(
            "mean_too_large", f"the round's mean has L2 norm {norm:.6g}, above the bound {bound:.6g} of its updates"
        )


def check_step(
    old: np.ndarray, new: np.ndarray, *, l2_bound: float | None = None, coordinate_bound: float | None = None
) -> None:
    """Refuse a next model ``new`` ``(P,)`` that is not finite in float32 or moved too far from ``old`` ``(P,)``.

    ``l2_bound`` bounds ``||new - old||``, ``coordinate_bound`` bounds ``max |new - old|``
    (None or inf: no bound). The float32 check is on the weights as they will be
    stored: a float64 model can be finite and still overflow float32.
    """
    bad = int(new.size - np.count_nonzero(np.isfinite(new.astype(np.float32))))
    if bad:
        raise CommitRefused("not_finite", f"the next model has {bad} non-finite float32 coordinates")
    step = new - old  # (P,)
    slack = 4 * _EPS64 * float(np.linalg.norm(old))  # rounding of old + step in float64
    if l2_bound is not None:
        moved = float(np.linalg.norm(step))
        if not moved <= l2_bound * (1 + _RTOL) + slack:
            raise CommitRefused("step_too_large", f"the model would move by L2 {moved:.6g}, above {l2_bound:.6g}")
    if coordinate_bound is not None:
        largest = float(np.max(np.abs(step))) if step.size else 0.0
        if not largest <= coordinate_bound * (1 + _RTOL) + slack:
            raise CommitRefused(
                "step_too_large", f"a coordinate would move by {largest:.6g}, above {coordinate_bound:.6g}"
            )
