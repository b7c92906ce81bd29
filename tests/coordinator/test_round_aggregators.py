"""coordinator.aggregators: one factory picks the mechanism; nothing else in the coordinator reads the flag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import coordinator
from coordinator.aggregation import WeightedSum
from coordinator.aggregators import (
    ABANDON,
    WAIT,
    PlainAggregator,
    SecureAggregator,
    Settlement,
    for_config,
)
from wire.protocol import TaskCreate


def _config(**overrides: Any) -> TaskCreate:
    body = {"population": "p", "plan_sha256": "0" * 64, "checkpoint_sha256": "1" * 64, "goal_count": 5}
    return TaskCreate.model_validate(body | overrides)


def test_for_config_picks_plain_by_default_and_secure_when_asked() -> None:
    assert isinstance(for_config(_config()), PlainAggregator)
    assert isinstance(for_config(_config(secure_aggregation=False)), PlainAggregator)
    assert isinstance(for_config(_config(secure_aggregation=True)), SecureAggregator)


def test_upload_refusal_plain_none_secure_names_the_secagg_route() -> None:
    assert for_config(_config()).upload_refusal() is None
    refusal = for_config(_config(secure_aggregation=True)).upload_refusal()
    assert refusal is not None
    assert refusal.reason == "secure_round"
    assert "secagg/masked_input" in str(refusal)


def test_settlement_tells_waiting_abandoned_and_a_sum_apart() -> None:
    total = WeightedSum([(2,)], np.array([1.0, 2.0]), 3.0)
    assert (WAIT.waiting, WAIT.abandoned, WAIT.total) == (True, False, None)
    assert (ABANDON.waiting, ABANDON.abandoned, ABANDON.total) == (False, True, None)
    done = Settlement(total=total)
    assert (done.waiting, done.abandoned, done.total) == (False, False, total)
    with pytest.raises(ValueError, match="abandoned"):
        Settlement(total=total, abandoned=True)


def test_secure_aggregation_flag_is_read_only_in_aggregators() -> None:
    """The one-home rule of issue 14: the clock, check-in, upload and commit ask the aggregator, not the flag."""
    package = Path(coordinator.__file__).parent
    readers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"\.secure_aggregation\b", path.read_text(encoding="utf-8"))
    )
    assert readers == ["aggregators.py"]
