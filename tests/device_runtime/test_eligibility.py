"""device_runtime.eligibility: every condition, in order, as a pure function."""

from __future__ import annotations

import dataclasses

import pytest

from device_runtime.eligibility import (
    BATTERY_LOW,
    METERED_NETWORK,
    NOT_CHARGING,
    NOT_IDLE,
    TOO_FEW_EXAMPLES,
    TOO_SOON,
    DeviceConditions,
    EligibilityPolicy,
    conditions_block,
    ineligibility,
)

GOOD = DeviceConditions(idle=True, charging=True, unmetered=True, battery=0.8)
POLICY = EligibilityPolicy(min_battery=0.5, min_examples=3, min_separation_seconds=100.0)


def _why(
    conditions: DeviceConditions = GOOD, examples: int = 3, last: float | None = None, now: float = 1000.0
) -> str | None:
    return ineligibility(conditions, POLICY, example_count=examples, last_participation=last, now=now)


def test_ineligibility_all_conditions_hold() -> None:
    assert _why() is None
    assert _why(last=900.0) is None  # exactly the separation


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"idle": False}, NOT_IDLE),
        ({"charging": False}, NOT_CHARGING),
        ({"unmetered": False}, METERED_NETWORK),
        ({"battery": 0.49}, BATTERY_LOW),
    ],
)
def test_ineligibility_each_device_condition(change: dict, reason: str) -> None:
    conditions = dataclasses.replace(GOOD, **change)
    assert _why(conditions) == reason
    assert conditions_block(conditions, POLICY) == reason


def test_ineligibility_first_failing_condition_wins() -> None:
    assert _why(DeviceConditions(idle=False, charging=False, unmetered=False, battery=0.0), examples=0) == NOT_IDLE


def test_ineligibility_too_few_examples_and_too_soon() -> None:
    assert _why(examples=2) == TOO_FEW_EXAMPLES
    assert _why(last=901.0) == TOO_SOON
    assert conditions_block(GOOD, POLICY) is None  # mid-training only the device conditions matter


@pytest.mark.parametrize("battery", [-0.1, 1.5])
def test_device_conditions_bad_battery(battery: float) -> None:
    with pytest.raises(ValueError, match="battery"):
        DeviceConditions(idle=True, charging=True, unmetered=True, battery=battery)


@pytest.mark.parametrize(
    ("field", "value"), [("min_battery", 2.0), ("min_examples", -1), ("min_separation_seconds", float("nan"))]
)
def test_eligibility_policy_bad_values_are_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        EligibilityPolicy(**{field: value})  # type: ignore[arg-type]
