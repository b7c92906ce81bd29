from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _quality() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_equal_tokens_reads_both_curves_where_both_reach() -> None:
    run = {"tokens": [100.0, 300.0], "recall": [0.1, 0.3]}
    central = {"tokens": [200.0, 400.0], "recall": [0.4, 0.5]}
    ratio, tokens = _quality().at_equal_tokens(run, central)
    assert tokens == 300.0
    assert ratio == pytest.approx(0.3 / 0.45, abs=1e-12)


def test_at_equal_tokens_none_without_overlap() -> None:
    quality = _quality()
    assert quality.at_equal_tokens({"tokens": [100.0], "recall": [0.1]}, {"tokens": [200.0], "recall": [0.2]}) is None
    assert quality.at_equal_tokens({"tokens": [], "recall": []}, {"tokens": [200.0], "recall": [0.2]}) is None
