"""The model checkpoint every fedkeys command reads and writes.

A checkpoint is a directory with ``model_config.json`` and ``weights.npz``
(the model's weights in ``model.weights`` order, with their names). Plain
numpy keeps it framework-neutral: the TFF simulation, the TFLite export, the
coordinator and the devices all move the same list of arrays.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from fedkeys_errors import FedkeysError
from model.config import ModelConfig
from model.keras_model import build_model

CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "weights.npz"


class CheckpointError(FedkeysError, ValueError):
    """A checkpoint that is missing, damaged, or of another model configuration."""


def save_checkpoint(directory: Path, config: ModelConfig, weights: list[np.ndarray], names: list[str]) -> None:
    """Write the config and the weights (in model order) into ``directory``."""
    if len(weights) != len(names):
        raise ValueError(f"{len(weights)} weights but {len(names)} names")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    arrays = {f"w{i:03d}": np.asarray(w) for i, w in enumerate(weights)}
    np.savez(directory / WEIGHTS_FILE, names=np.array(names), **arrays)


def save_model(directory: Path, config: ModelConfig, model: tf.keras.Model) -> None:
    save_checkpoint(directory, config, model.get_weights(), [w.name for w in model.weights])


def load_checkpoint(directory: Path) -> tuple[ModelConfig, list[np.ndarray]]:
    """The config and the weight arrays; a clear error if anything is off."""
    config_path = directory / CONFIG_FILE
    weights_path = directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"not a fedkeys checkpoint: {path} is missing")
    try:
        config = ModelConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{config_path}: {err}") from err
    try:
        with np.load(weights_path, allow_pickle=False) as data:
            count = len([k for k in data.files if k.startswith("w")])
            weights = [data[f"w{i:03d}"] for i in range(count)]
    except (OSError, ValueError, KeyError, EOFError, TypeError, NotImplementedError, zipfile.BadZipFile) as err:
        # A truncated or bit-flipped .npz raises BadZipFile, EOFError or NotImplementedError
        # (bad CRC, short read, garbled compression method); a bare .npy raises TypeError.
        raise CheckpointError(f"{weights_path}: unreadable weights ({err})") from err
    return config, weights


def assign_weights(model: tf.keras.Model, weights: list[np.ndarray], source: str) -> None:
    """Set ``model``'s weights, naming the first one whose shape differs."""
    expected = model.weights
    if len(expected) != len(weights):
        raise CheckpointError(f"{source}: has {len(weights)} weight tensors, the model has {len(expected)}")
    for variable, array in zip(expected, weights, strict=True):
        if tuple(variable.shape) != array.shape:
            raise CheckpointError(
                f"{source}: weight {variable.name} has shape {array.shape}, the model expects {tuple(variable.shape)}"
            )
    model.set_weights(weights)


def restore_model(
    directory: Path, *, unroll: bool = False, batch_size: int | None = None, seq_len: int | None = None
) -> tuple[ModelConfig, tf.keras.Model]:
    """Build the checkpoint's model and load its weights."""
    config, weights = load_checkpoint(directory)
    model = build_model(config, unroll=unroll, batch_size=batch_size, seq_len=seq_len)
    assign_weights(model, weights, str(directory))
    return config, model
