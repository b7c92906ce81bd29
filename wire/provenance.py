"""Where a model came from: the provenance record an exported plan's manifest carries.

A keyboard model is pretrained centrally on public or proxy data, then trained
federated on phones (Xu et al. 2023; Nguyen et al. 2023, "Where to Begin?"), so
a model file alone does not say what it learned from. ``fedkeys export tflite``
writes, from the exported run's ``summary.json``: the run, its kind (central,
simulation, deployed), how many federated rounds trained it there, the data that
run trained on, the run it started from, and what that start was trained on
(what it was *pretrained on*). A model downloaded from the coordinator carries
its plan's record forward (``fedkeys.deployed_run``).

A manifest comes to a device as untrusted bytes, so every field is checked for
type, range and length (:class:`ProvenanceError` names the bad one), and unknown
fields are refused. Manifests written before this record existed have none.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from fedkeys_errors import FedkeysError

MAX_TEXT = 4096
"""The longest string a provenance field may hold (a path or URL)."""

_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MAX_COUNT = 10**15


class ProvenanceError(FedkeysError, ValueError):
    """A provenance record with a missing, unknown or malformed field."""


@dataclasses.dataclass(frozen=True)
class TrainedOn:
    """The data a run trained on, as its summary's ``trained_on`` records it."""

    data: str  # the prepared corpus directory
    split: str  # e.g. "train", "proxy", "train+proxy"
    users: int
    tokens: int

    def __post_init__(self) -> None:
        _check_text("data", self.data)
        _check_text("split", self.split)
        _check_count("users", self.users)
        _check_count("tokens", self.tokens)

    @classmethod
    def from_dict(cls, data: object) -> TrainedOn:
        """Parse and validate a summary's or a manifest's ``trained_on`` object."""
        return cls(**_exact_fields(cls, data, "trained_on"))


@dataclasses.dataclass(frozen=True)
class ModelProvenance:
    """Which run a model was exported from and what trained it (see the module docstring).

    ``None`` means not known: ``kind`` and ``rounds`` for a run without a
    summary, ``trained_on`` for a deployed model (the phones' data is never
    seen), ``init_from`` and ``pretrained_on`` for a model trained from scratch
    or from a start that recorded nothing.
    """

    run: str
    kind: str | None
    rounds: int | None  # federated rounds that trained it in ``run`` (0: not federated)
    trained_on: TrainedOn | None
    init_from: str | None
    pretrained_on: TrainedOn | None

    def __post_init__(self) -> None:
        _check_text("run", self.run)
        if self.kind is not None and not (isinstance(self.kind, str) and _KIND.match(self.kind)):
            raise ProvenanceError(f"kind must be a short lowercase name such as 'central', got {self.kind!r}")
        if self.rounds is not None:
            _check_count("rounds", self.rounds)
        if self.init_from is not None:
            _check_text("init_from", self.init_from)
        for name in ("trained_on", "pretrained_on"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, TrainedOn):
                raise ProvenanceError(f"{name} must be a TrainedOn record or None, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> ModelProvenance:
        """Parse and validate a JSON object; ProvenanceError (never KeyError/TypeError) on any bad input."""
        fields = _exact_fields(cls, data, "provenance")
        for name in ("trained_on", "pretrained_on"):
            if fields[name] is not None:
                try:
                    fields[name] = TrainedOn.from_dict(fields[name])
                except ProvenanceError as err:
                    raise ProvenanceError(f"{name}: {err}") from None
        return cls(**fields)


def _exact_fields(cls: type, data: object, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProvenanceError(f"{what} must be an object, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in data]
    unknown = sorted(str(k) for k in set(data) - set(names))
    if missing:
        raise ProvenanceError(f"{what} is missing {', '.join(missing)}")
    if unknown:
        raise ProvenanceError(f"{what} has unknown fields {', '.join(unknown)}")
    return dict(data)


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT or not value.isprintable():
        shown = value[:80] + "..." if isinstance(value, str) and len(value) > 80 else value
        raise ProvenanceError(f"{what} must be printable text of 1 to {MAX_TEXT} characters, got {shown!r}")


def _check_count(what: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_COUNT:
        raise ProvenanceError(f"{what} must be an integer from 0 to {_MAX_COUNT}, got {value!r}")
