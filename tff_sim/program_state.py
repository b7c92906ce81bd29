"""Checkpoint and resume through ``tff.program``'s file program state manager.

The learning process state is saved after every round as a flat list,
``[round] + tf.nest.flatten(state)``: TFF 0.87's manager cannot save the
state's nested records directly under this TF/wrapt combination, and a flat
list restores into the process's own state structure exactly. Because client
sampling, shuffling and initialization are all functions of (seed, round), a
run killed in any round and resumed ends at the same model as an
uninterrupted one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

_KEEP = 3


class RoundCheckpoints:
    """The latest few round states under ``root``."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._manager = tff.program.FileProgramStateManager(str(root), keep_total=_KEEP)

    def save(self, state: Any, round_num: int) -> None:
        flat = [np.int64(round_num), *tf.nest.flatten(state)]
        asyncio.run(self._manager.save(flat, round_num))

    def load_latest(self, template: Any) -> tuple[Any, int] | None:
        """(state, round) of the newest checkpoint, or None when there is none."""
        structure = [np.int64(0), *tf.nest.flatten(template)]
        flat, _version = asyncio.run(self._manager.load_latest(structure))
        if flat is None:
            return None
        return tf.nest.pack_sequence_as(template, list(flat[1:])), int(flat[0])
