"""Typed, validated configuration of the keyboard language model.

The presets follow the shape of Gboard's next-word model (Hard et al. 2018,
"Federated Learning for Mobile Keyboard Prediction"): a word-level recurrent
network whose input embedding is tied to the output projection, so that the
parameters spent on the vocabulary are paid once. ``gboard`` is that paper's
size (96-dim embedding, one 670-unit CIFG layer); ``small`` is the default that
trains in minutes on two CPU cores; ``tiny`` exists for tests.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

CellType = Literal["cifg", "lstm"]

_CELL_TYPES: tuple[str, ...] = get_args(CellType)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the model's variables and their order.

    Two checkpoints with equal configs are interchangeable; a checkpoint is
    refused by a model of another config (see ``model.checkpoint``).
    """

    vocab_size: int
    embedding_dim: int = 96
    units: int = 256
    num_layers: int = 1
    cell: CellType = "cifg"
    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "units", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.cell not in _CELL_TYPES:
            raise ValueError(f"ModelConfig.cell must be one of {_CELL_TYPES}, got {self.cell!r}")
        ids = {"pad_id": self.pad_id, "unk_id": self.unk_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        for name, value in ids.items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self.vocab_size:
                raise ValueError(f"ModelConfig.{name} must be an id in [0, {self.vocab_size}), got {value!r}")
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"ModelConfig special ids must be distinct, got {ids}")

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Ids a keyboard never suggests: padding, unknown word, begin and end markers."""
        return (self.pad_id, self.unk_id, self.bos_id, self.eos_id)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {unknown}")
        return cls(**data)

    @classmethod
    def from_preset(cls, preset: str, vocab_size: int, **overrides: Any) -> ModelConfig:
        """The named size preset for a vocabulary, with optional field overrides."""
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
        fields = {**PRESETS[preset], **overrides}
        return cls(vocab_size=vocab_size, **fields)


PRESETS: dict[str, dict[str, Any]] = {
    # Tests: a few thousand parameters beside the embedding.
    "tiny": {"embedding_dim": 16, "units": 32, "num_layers": 1, "cell": "cifg"},
    # Default: trains on two CPU cores in minutes on Shakespeare.
    "small": {"embedding_dim": 96, "units": 256, "num_layers": 1, "cell": "cifg"},
    # Hard et al. 2018: 96-dim embedding, one 670-unit CIFG layer (10k words).
    "gboard": {"embedding_dim": 96, "units": 670, "num_layers": 1, "cell": "cifg"},
}
