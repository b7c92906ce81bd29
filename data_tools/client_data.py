"""Compact per-client storage of one split: a few flat numpy arrays.

Tens of thousands of clients with a Python object each would be slow to
load; instead a split is four arrays plus a JSON list of client ids:

- ``tokens`` (int32): every example's word ids, concatenated, no BOS/EOS,
- ``example_offsets`` (int64, ``num_examples + 1``): example ``j`` is
  ``tokens[example_offsets[j]:example_offsets[j + 1]]``,
- ``client_offsets`` (int64, ``num_clients + 1``): client ``i`` owns
  examples ``client_offsets[i]:client_offsets[i + 1]``,
- ``timestamps`` (float64, per example): UTC epoch seconds, NaN if unknown.

Each is saved as ``<name>.npy`` so loading is a few ``np.load`` calls
(optionally memory-mapped).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import CorpusError

__all__ = [
    "CLIENT_DATA_FILES",
    "ClientData",
    "build_client_data",
    "load_client_data",
    "save_client_data",
]

CLIENT_DATA_FILES: tuple[str, ...] = (
    "client_ids.json",
    "tokens.npy",
    "example_offsets.npy",
    "client_offsets.npy",
    "timestamps.npy",
)

IntArray = npt.NDArray[np.int32]
OffsetArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ClientData:
    """One split's clients and their tokenized examples (see module docstring)."""

    name: str
    client_ids: tuple[str, ...]
    tokens: IntArray
    example_offsets: OffsetArray
    client_offsets: OffsetArray
    timestamps: FloatArray

    def __post_init__(self) -> None:
        problems = []
        if self.tokens.ndim != 1 or self.tokens.dtype != np.int32:
            problems.append("tokens must be 1-D int32")
        for label, offsets, total in (
            ("example_offsets", self.example_offsets, self.tokens.shape[0]),
            ("client_offsets", self.client_offsets, self.example_offsets.shape[0] - 1),
        ):
            if offsets.ndim != 1 or offsets.dtype != np.int64 or offsets.shape[0] < 1:
                problems.append(f"{label} must be non-empty 1-D int64")
            elif offsets[0] != 0 or offsets[-1] != total or np.any(np.diff(offsets) < 0):
                problems.append(f"{label} must rise from 0 to {total}")
        if self.client_offsets.shape[0] != len(self.client_ids) + 1:
            problems.append("client_offsets must have one entry per client plus one")
        if self.timestamps.shape != (self.example_offsets.shape[0] - 1,):
            problems.append("timestamps must have one entry per example")
        if problems:
            raise ValueError(f"inconsistent ClientData {self.name!r}: {'; '.join(problems)}")

    @property
    def num_clients(self) -> int:
        return len(self.client_ids)

    @property
    def num_examples(self) -> int:
        return int(self.example_offsets.shape[0] - 1)

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[0])

    def _example_range(self, client: int) -> range:
        if not 0 <= client < self.num_clients:
            raise IndexError(f"client index {client} out of range [0, {self.num_clients})")
        return range(int(self.client_offsets[client]), int(self.client_offsets[client + 1]))

    def client_examples(self, client: int) -> list[IntArray]:
        """The examples (token id arrays, views) of client number ``client``."""
        offsets = self.example_offsets
        return [self.tokens[offsets[j] : offsets[j + 1]] for j in self._example_range(client)]

    def client_timestamps(self, client: int) -> FloatArray:
        """Per-example timestamps of client number ``client`` (NaN if unknown)."""
        examples = self._example_range(client)
        return self.timestamps[examples.start : examples.stop]

    def client_tokens(self, client: int) -> int:
        """How many tokens (words) client number ``client`` has."""
        examples = self._example_range(client)
        return int(self.example_offsets[examples.stop] - self.example_offsets[examples.start])

    def all_examples(self) -> list[IntArray]:
        """Every example of every client, in storage order."""
        offsets = self.example_offsets
        return [self.tokens[offsets[j] : offsets[j + 1]] for j in range(self.num_examples)]

    def select(self, indices: Sequence[int] | npt.NDArray[np.integer[Any]]) -> ClientData:
        """A new ClientData with only the given clients, in the given order."""
        chosen = [int(i) for i in indices]
        token_parts: list[IntArray] = []
        length_parts: list[OffsetArray] = []
        time_parts: list[FloatArray] = []
        counts: list[int] = []
        for client in chosen:
            examples = self._example_range(client)
            first, last = (
                self.example_offsets[examples.start],
                self.example_offsets[examples.stop],
            )
            token_parts.append(self.tokens[first:last])
            length_parts.append(np.diff(self.example_offsets[examples.start : examples.stop + 1]))
            time_parts.append(self.timestamps[examples.start : examples.stop])
            counts.append(len(examples))
        return ClientData(
            name=self.name,
            client_ids=tuple(self.client_ids[i] for i in chosen),
            tokens=np.concatenate(token_parts).astype(np.int32) if chosen else _ints(0),
            example_offsets=_offsets(np.concatenate(length_parts) if chosen else []),
            client_offsets=_offsets(counts),
            timestamps=np.concatenate(time_parts).astype(np.float64) if chosen else _floats(0),
        )


def _ints(n: int) -> IntArray:
    return np.zeros(n, dtype=np.int32)


def _floats(n: int) -> FloatArray:
    return np.zeros(n, dtype=np.float64)


def _offsets(lengths: Sequence[int] | npt.NDArray[np.integer[Any]]) -> OffsetArray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=out[1:])
    return out


def build_client_data(
    name: str,
    client_ids: Sequence[str],
    examples: Sequence[Sequence[npt.NDArray[np.integer[Any]]]],
    timestamps: Sequence[Sequence[float | None]],
) -> ClientData:
    """Pack per-client lists of examples (and their timestamps) into arrays."""
    if not len(client_ids) == len(examples) == len(timestamps):
        raise ValueError("client_ids, examples and timestamps must have the same length")
    flat = [e for client in examples for e in client]
    times = [np.nan if t is None else float(t) for client in timestamps for t in client]
    if len(times) != len(flat):
        raise ValueError("every example needs a timestamp (None if unknown)")
    return ClientData(
        name=name,
        client_ids=tuple(client_ids),
        tokens=np.concatenate(flat).astype(np.int32) if flat else _ints(0),
        example_offsets=_offsets([len(e) for e in flat]),
        client_offsets=_offsets([len(c) for c in examples]),
        timestamps=np.asarray(times, dtype=np.float64),
    )


def save_client_data(data: ClientData, directory: Path) -> None:
    """Write ``data`` as the files of :data:`CLIENT_DATA_FILES` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "client_ids.json").write_text(json.dumps(list(data.client_ids)), encoding="utf-8")
    for field in ("tokens", "example_offsets", "client_offsets", "timestamps"):
        np.save(directory / f"{field}.npy", getattr(data, field), allow_pickle=False)


def load_client_data(directory: Path, name: str | None = None, *, mmap: bool = False) -> ClientData:
    """Load a split saved by :func:`save_client_data`; ``mmap`` maps arrays read-only."""
    for filename in CLIENT_DATA_FILES:
        if not (directory / filename).is_file():
            raise CorpusError(f"{directory}: missing {filename}")
    mode: Literal["r"] | None = "r" if mmap else None
    try:
        client_ids = json.loads((directory / "client_ids.json").read_text(encoding="utf-8"))
        arrays = {
            field: np.load(directory / f"{field}.npy", mmap_mode=mode, allow_pickle=False)
            for field in ("tokens", "example_offsets", "client_offsets", "timestamps")
        }
        if not isinstance(client_ids, list) or not all(isinstance(c, str) for c in client_ids):
            raise ValueError("client_ids.json must be a JSON list of strings")
        return ClientData(name=name or directory.name, client_ids=tuple(client_ids), **arrays)
    except ValueError as exc:
        raise CorpusError(f"{directory}: corrupt client data ({exc})") from exc
