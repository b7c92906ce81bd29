"""The one domain error of secure aggregation, with a machine-readable reason."""

from __future__ import annotations

from fedkeys_errors import FedkeysError

REASONS: tuple[str, ...] = (
    "below_threshold",  # fewer devices left than the round's threshold: nothing is revealed
    "unrecoverable",  # not enough Shamir shares to remove one device's masks
    "bad_shares",  # shares that disagree, or rebuild a secret other than the one its owner committed to
    "out_of_range",  # an unmasked sum that no devices with in-range inputs could have produced
    "bad_message",  # a message that does not fit the round (unknown id, wrong length, bad ciphertext)
    "inconsistent",  # a request that would reveal both secrets of one device
    "bad_config",  # parameters that cannot work (ring overflow, threshold out of range)
    "wrong_phase",  # a message for a phase that is not open (early, late, or the round is over)
)


class SecAggError(FedkeysError, ValueError):
    """A secure-aggregation step refused; ``reason`` is one of ``REASONS``.

    Raised instead of revealing anything: a refused round is abandoned whole
    (Bonawitz et al. 2017, §4: the server aborts when fewer than t users remain).
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown SecAggError reason {reason!r}; expected one of {REASONS}")
        super().__init__(message)
        self.reason = reason
