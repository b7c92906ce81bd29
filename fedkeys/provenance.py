"""A run's provenance record (``wire.provenance.ModelProvenance``), read from its ``summary.json``.

Every training command records where its model came from in the run's summary:
``kind``, ``rounds`` for a federated run, ``trained_on`` (data, split, users,
tokens) and ``init_from``: a path for a central run started from a checkpoint,
or the start's own provenance (``run``, ``kind``, ``rounds``, ``trained_on``)
for a simulation (``tff_sim.simulation.load_initial_model``) and for a model
downloaded from the coordinator (``fedkeys.deployed_run``, from its plan's
manifest). :func:`run_provenance` reads that into the typed record
``fedkeys export tflite`` writes into the manifest; :func:`as_init_from` is the
inverse step, a provenance as the ``init_from`` of the next run's summary.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fedkeys.run_dir import SUMMARY_FILE, read_summary
from wire.provenance import ModelProvenance, ProvenanceError, TrainedOn


def run_provenance(run: Path) -> ModelProvenance:
    """Where the model of ``run`` came from; ``kind``, ``rounds`` and the rest None when it has no summary.

    A summary without ``rounds`` is of a run that trained no federated round (0).
    ProvenanceError names the field of a summary that is malformed.
    """
    run = Path(run)
    if not (run / SUMMARY_FILE).is_file():
        return ModelProvenance(str(run), None, None, None, None, None)
    summary = read_summary(run)
    try:
        trained_on = summary.get("trained_on")
        start = summary.get("init_from")
        pretrained_on = start.get("trained_on") if isinstance(start, dict) else None
        return ModelProvenance(
            run=str(run),
            kind=summary.get("kind"),
            rounds=summary.get("rounds", 0),
            trained_on=None if trained_on is None else TrainedOn.from_dict(trained_on),
            init_from=str(start["run"]) if isinstance(start, dict) else start,
            pretrained_on=None if pretrained_on is None else TrainedOn.from_dict(pretrained_on),
        )
    except (ProvenanceError, KeyError) as err:
        raise ProvenanceError(f"{run / SUMMARY_FILE}: where the model came from: {err}") from None


def as_init_from(provenance: ModelProvenance) -> dict[str, Any]:
    """``provenance`` as a summary's ``init_from`` (the keys ``load_initial_model`` writes)."""
    trained_on = provenance.trained_on
    return {
        "run": provenance.run,
        "kind": provenance.kind,
        "rounds": provenance.rounds,
        "trained_on": None if trained_on is None else dataclasses.asdict(trained_on),
    }
