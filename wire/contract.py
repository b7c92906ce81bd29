"""The client-training contract: how a client trains in a round and what it uploads, on both sides.

Simulation predicts deployment only if a simulated client and a phone train
the same way (issue 8, issue 16): the same local epochs and learning rate, the
same rows in the same order (``wire.row_order``, seeded by ``data_seed``) capped
at the same count, and the same upload codec and clipping (``wire.update``).
This record is those settings, written once: ``tff_sim.SimConfig`` holds one,
a deployed task's settings (``wire.protocol.TaskCreate``) and each assignment
(``wire.protocol.Hyperparameters`` + codec + clip) carry one, and
``fedkeys.parity`` runs one on both sides.

What the plan fixes (batch size, sequence length, the model) is not here: the
exported plan's manifest (``wire.manifest.PlanManifest``) is its one source.
"""

from __future__ import annotations

import dataclasses
import math

from fedkeys_errors import FedkeysError
from wire.codec import CODECS

MAX_DATA_SEED = 2**32 - 1


class ContractError(FedkeysError, ValueError):
    """A client-training setting out of range; the message names the field and the value."""


@dataclasses.dataclass(frozen=True)
class ClientTraining:
    """One round of a client's local training and upload (FedAvg's E and eta, McMahan et al. 2017; the codec).

    - ``local_epochs``: passes over the client's rows (FedAvg's E);
    - ``learning_rate``: the client's SGD step size (one step per batch);
    - ``max_rows``: cap on a client's rows per round, a fresh seeded subset each round (None: all rows);
    - ``data_seed``: seeds the row order, ``wire.row_order.row_order``;
    - ``codec``: the upload codec, one of ``wire.codec.CODECS``;
    - ``clip_norm``: clip the delta's global L2 norm on the client before encoding (None: no clipping).
    """

    local_epochs: int = 1
    learning_rate: float = 0.5
    max_rows: int | None = 256
    data_seed: int = 0
    codec: str = "float32"
    clip_norm: float | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.local_epochs) or self.local_epochs < 1:
            raise ContractError(f"local_epochs must be a positive integer, got {self.local_epochs!r}")
        if not (isinstance(self.learning_rate, int | float) and math.isfinite(self.learning_rate)):
            raise ContractError(f"learning_rate must be a positive finite number, got {self.learning_rate!r}")
        if not self.learning_rate > 0:
            raise ContractError(f"learning_rate must be a positive finite number, got {self.learning_rate!r}")
        if self.max_rows is not None and (not _is_int(self.max_rows) or self.max_rows < 1):
            raise ContractError(f"max_rows must be a positive integer or None, got {self.max_rows!r}")
        if not _is_int(self.data_seed) or not 0 <= self.data_seed <= MAX_DATA_SEED:
            raise ContractError(f"data_seed must be an integer in [0, 2**32), got {self.data_seed!r}")
        if self.codec not in CODECS:
            raise ContractError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if self.clip_norm is not None and not (
            isinstance(self.clip_norm, int | float) and math.isfinite(self.clip_norm) and self.clip_norm > 0
        ):
            raise ContractError(f"clip_norm must be a positive finite number or None, got {self.clip_norm!r}")

    def replace(self, **changes: object) -> ClientTraining:
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
