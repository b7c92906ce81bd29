"""The run directory every fedkeys training command writes.

RUN/summary.json      metrics on test users, the config, wall time
RUN/tokenizer.model   the tokenizer the run was trained with (for ``suggest``)
RUN/checkpoint/       the neural model (``model.checkpoint`` format), or
RUN/ngram.npz         the n-gram model

A run directory is written under a temporary name and renamed when complete,
so a crashed run never looks finished.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fedkeys_errors import FedkeysError

SUMMARY_FILE = "summary.json"
TOKENIZER_FILE = "tokenizer.model"
CHECKPOINT_DIR = "checkpoint"
NGRAM_FILE = "ngram.npz"


class RunDirError(FedkeysError, ValueError):
    """A run directory that cannot be written or is not a fedkeys run."""


@contextlib.contextmanager
def staged_run_dir(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``out``; move it to ``out`` only on success."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunDirError(f"{out} already exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def write_summary(run: Path, summary: dict[str, Any]) -> None:
    (run / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")


def read_summary(run: Path) -> dict[str, Any]:
    path = Path(run) / SUMMARY_FILE
    if not path.is_file():
        raise RunDirError(f"{run} is not a fedkeys run directory: {SUMMARY_FILE} is missing")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except ValueError as err:
        raise RunDirError(f"{path}: not valid JSON ({err})") from err
    return data
