"""A run's provenance from its summary.json (fedkeys/provenance.py), as ``export tflite`` writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedkeys.provenance import as_init_from, run_provenance
from wire.provenance import ModelProvenance, ProvenanceError, TrainedOn

PROXY = {"data": "data/shk", "split": "proxy", "users": 12, "tokens": 3456}
TRAIN = {"data": "data/shk", "split": "train", "users": 30, "tokens": 9000}


def _run(tmp_path: Path, summary: dict[str, Any] | None) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_run_provenance_of_a_pretrained_simulation_names_its_start(tmp_path: Path) -> None:
    start = {"run": "runs/pretrained", "kind": "central", "trained_on": PROXY, "test": {"recall_at_1": 0.1}}
    run = _run(tmp_path, {"kind": "simulation", "rounds": 8, "trained_on": TRAIN, "init_from": start})
    assert run_provenance(run) == ModelProvenance(
        run=str(run),
        kind="simulation",
        rounds=8,
        trained_on=TrainedOn(**TRAIN),
        init_from="runs/pretrained",
        pretrained_on=TrainedOn(**PROXY),
    )


def test_run_provenance_of_a_central_run_has_no_rounds_and_a_start_path(tmp_path: Path) -> None:
    run = _run(tmp_path, {"kind": "central", "trained_on": PROXY, "init_from": "runs/p/checkpoint"})
    assert run_provenance(run) == ModelProvenance(str(run), "central", 0, TrainedOn(**PROXY), "runs/p/checkpoint", None)


def test_run_provenance_of_a_run_without_summary_knows_only_the_run(tmp_path: Path) -> None:
    run = _run(tmp_path, None)
    assert run_provenance(run) == ModelProvenance(str(run), None, None, None, None, None)


def test_run_provenance_names_a_malformed_summary(tmp_path: Path) -> None:
    run = _run(tmp_path, {"kind": "central", "trained_on": {**PROXY, "users": "many"}})
    with pytest.raises(ProvenanceError, match=r"summary\.json: where the model came from: users must be an integer"):
        run_provenance(run)


def test_as_init_from_is_read_back_as_the_next_runs_pretrained_on(tmp_path: Path) -> None:
    """A deployed model's summary records its plan's provenance as init_from; its export reads it back."""
    plan = ModelProvenance("runs/pretrained", "central", 0, TrainedOn(**PROXY), None, None)
    run = _run(tmp_path, {"kind": "deployed", "rounds": 3, "init_from": as_init_from(plan)})
    assert run_provenance(run) == ModelProvenance(str(run), "deployed", 3, None, "runs/pretrained", TrainedOn(**PROXY))
