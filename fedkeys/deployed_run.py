"""A deployed model as a run folder, so ``suggest`` and ``export tflite`` read it like any other run.

``fedkeys admin download-model --out DIR`` writes what ``fedkeys.run_dir``
describes: ``checkpoint/`` (the committed weights, named and configured by
the task's plan manifest), ``tokenizer.model`` (the plan's own file, fetched
by its sha256 and checked against the manifest's ``tokenizer_sha256``) and
``summary.json`` recording where the model came from: the coordinator, the
population and task, the model version and the round that committed it, and
the plan's and weights' hashes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from fedkeys.admin_client import AdminClient, AdminError
from fedkeys.run_dir import CHECKPOINT_DIR, TOKENIZER_FILE, staged_run_dir, write_summary
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
    info = next((m for m in admin.models(population) if m.version == version), None)
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
    summary = {
        "kind": "deployed",
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
        write_summary(staging, summary)
    logger.info("model version %d of %s -> %s", version, population, out)
    return summary
