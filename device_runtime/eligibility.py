"""Whether the phone may train now, decided on the phone.

Bonawitz et al. 2019 (§2) and Hard et al. 2018: a device only joins training
while it is idle, charging and on an unmetered network, so that training never
costs the user battery, data or responsiveness; it also needs enough local
examples, and it waits a minimum time between participations (spreading work
over the population and limiting how much any one user contributes). The same
conditions are re-checked between training batches: the moment one fails, the
device stops and discards the work.

Pure functions of a :class:`DeviceConditions` record, so they are tested
without a phone and the emulator can simulate conditions.
"""

from __future__ import annotations

import dataclasses
import math

# Reasons, as logged on the device and sent to the coordinator in an abort.
NOT_IDLE = "not_idle"
NOT_CHARGING = "not_charging"
METERED_NETWORK = "metered_network"
BATTERY_LOW = "battery_low"
TOO_FEW_EXAMPLES = "too_few_examples"
TOO_SOON = "too_soon"
# what conditions_block returns: the phone's state, not its data or history
CONDITION_REASONS: frozenset[str] = frozenset({NOT_IDLE, NOT_CHARGING, METERED_NETWORK, BATTERY_LOW})


@dataclasses.dataclass(frozen=True)
class DeviceConditions:
    """What the phone's OS reports at one moment."""

    idle: bool
    charging: bool
    unmetered: bool
    battery: float  # charge level in [0, 1]

    def __post_init__(self) -> None:
        if not 0.0 <= self.battery <= 1.0:
            raise ValueError(f"battery must be in [0, 1], got {self.battery!r}")


@dataclasses.dataclass(frozen=True)
class EligibilityPolicy:
    """Thresholds of the eligibility rule (defaults here, nowhere else)."""

    min_battery: float = 0.5
    min_examples: int = 1
    min_separation_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_battery <= 1.0:
            raise ValueError(f"min_battery must be in [0, 1], got {self.min_battery!r}")
        if self.min_examples < 0:
            raise ValueError(f"min_examples must be non-negative, got {self.min_examples!r}")
        if not math.isfinite(self.min_separation_seconds) or self.min_separation_seconds < 0:
            raise ValueError(f"min_separation_seconds must be non-negative, got {self.min_separation_seconds!r}")


def conditions_block(conditions: DeviceConditions, policy: EligibilityPolicy) -> str | None:
    """The first device condition that forbids training now (re-checked between batches), or None."""
    if not conditions.idle:
        return NOT_IDLE
    if not conditions.charging:
        return NOT_CHARGING
    if not conditions.unmetered:
        return METERED_NETWORK
    if conditions.battery < policy.min_battery:
        return BATTERY_LOW
    return None


def ineligibility(
    conditions: DeviceConditions,
    policy: EligibilityPolicy,
    *,
    example_count: int,
    last_participation: float | None,
    now: float,
) -> str | None:
    """Why the device may not check in now, or None if it may (all conditions hold)."""
    blocked = conditions_block(conditions, policy)
    if blocked is not None:
        return blocked
    if example_count < policy.min_examples:
        return TOO_FEW_EXAMPLES
    if last_participation is not None and now - last_participation < policy.min_separation_seconds:
        return TOO_SOON
    return None
