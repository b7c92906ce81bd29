"""A deployed model as a run folder, so ``suggest`` and ``export tflite`` read it like any other run.

``fedkeys admin download-model --out DIR`` writes what ``fedkeys.run_dir``
describes: ``checkpoint/`` (the committed weights, named and configured by
the task's plan manifest), ``tokenizer.model`` (the plan's own file, fetched
by its sha256 and checked against the manifest's ``tokenizer_sha256``),
``metrics.csv`` and ``tensorboard/`` (the committed rounds up to that version,
``fedkeys.deployed_log``) and ``summary.json`` recording where the model came
from: the coordinator, the population and task, the model version and the
round that committed it, the plan's and weights' hashes, ``rounds`` (the
federated rounds that trained it) and, when the task started from its plan's
own model (same content id as the manifest's ``model_version``), that model's
provenance as ``init_from`` (what it was pretrained on), which ``fedkeys
export tflite`` carries into the next manifest.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from fedkeys.admin_client import AdminClient, AdminError
from fedkeys.deployed_log import deployed_rows, write_deployed_log
from fedkeys.provenance import as_init_from
from fedkeys.run_dir import CHECKPOINT_DIR, TOKENIZER_FILE, staged_run_dir, write_summary
from wire.manifest import PlanManifest
from wire.protocol import ModelInfo
from wire.update import decode_weights

logger = logging.getLogger(__name__)


def download_run(
    admin: AdminClient, population: str, out: Path, *, version: int | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """Write model ``version`` (default: the latest) of ``population`` as the run folder ``out``; its summary."""
    from model.checkpoint import save_checkpoint
    from model.config import ModelConfig

    status = admin.status(population)
    version = status.model_version if version is None else version
    models = admin.models(population)
    info = next((m for m in models if m.version == version), None)
    if info is None:
        raise AdminError(f"{population} has no model version {version} (the latest is {status.model_version})")
    manifest = admin.plan_manifest(status)
    tokenizer_sha = manifest.files.get(TOKENIZER_FILE)
    if tokenizer_sha is None or tokenizer_sha != manifest.tokenizer_sha256:
        raise AdminError(f"{population}: the task's plan does not ship the tokenizer its manifest names")
    tokenizer = admin.blob(tokenizer_sha)
    blob = admin.model_blob(population, version)
    weights = decode_weights(blob)
    manifest.check_tensors(weights, f"model version {version} of {population}")
    rows = deployed_rows(admin.rounds(population), status.config, up_to_version=version)
    start = _plan_start(admin, population, manifest, models)
    summary = {
        "kind": "deployed",
        "rounds": len(rows),
        "init_from": start,
        "plan_provenance": None if manifest.provenance is None else manifest.provenance.to_dict(),
        "source": {
            "coordinator": admin.url,
            "population": status.population,
            "task": status.task,
            "model_version": version,
            "round": info.round,  # the round whose commit produced this version; None for the initial model
            "rounds_committed": status.rounds_committed,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "plan_sha256": status.config.plan_sha256,
            "plan_model_version": manifest.model_version,
            "downloaded_unix": round(time.time(), 3),
        },
        "config": {"model": manifest.model_config, "task": status.config.model_dump(mode="json")},
    }
    with staged_run_dir(out, overwrite=overwrite) as staging:
        config = ModelConfig.from_dict(manifest.model_config)
        save_checkpoint(staging / CHECKPOINT_DIR, config, weights, [t.name for t in manifest.tensors])
        (staging / TOKENIZER_FILE).write_bytes(tokenizer)
        write_deployed_log(staging, rows)
        write_summary(staging, summary)
    logger.info("model version %d of %s -> %s", version, population, out)
    return summary


def _plan_start(
    admin: AdminClient, population: str, manifest: PlanManifest, models: list[ModelInfo]
) -> dict[str, Any] | None:
    """The plan's provenance as ``init_from`` if the task's initial model is the plan's own, else None."""
    from fedkeys.export import model_version

    initial = next((m for m in models if m.round is None), None)
    if manifest.provenance is None or initial is None:
        return None
    weights = admin.model(population, initial.version)
    if model_version(manifest.model_config, weights) != manifest.model_version:
        logger.info("%s started from another model than its plan's: its start is not recorded", population)
        return None
    return as_init_from(manifest.provenance)
