"""Where a model came from (wire/provenance.py): a typed record that refuses every malformed field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from wire.provenance import MAX_TEXT, ModelProvenance, ProvenanceError, TrainedOn

PROXY = TrainedOn(data="data/shk", split="proxy", users=12, tokens=3456)
TRAIN = TrainedOn(data="data/shk", split="train", users=30, tokens=9000)


def _provenance(**overrides: Any) -> ModelProvenance:
    fields: dict[str, Any] = {
        "run": "runs/fed",
        "kind": "simulation",
        "rounds": 8,
        "trained_on": TRAIN,
        "init_from": "runs/pretrained",
        "pretrained_on": PROXY,
    }
    return ModelProvenance(**{**fields, **overrides})


def test_provenance_dict_round_trip() -> None:
    provenance = _provenance()
    data = provenance.to_dict()
    assert data == {
        "run": "runs/fed",
        "kind": "simulation",
        "rounds": 8,
        "trained_on": {"data": "data/shk", "split": "train", "users": 30, "tokens": 9000},
        "init_from": "runs/pretrained",
        "pretrained_on": {"data": "data/shk", "split": "proxy", "users": 12, "tokens": 3456},
    }
    assert ModelProvenance.from_dict(data) == provenance


def test_provenance_with_unknowns_round_trips() -> None:
    provenance = ModelProvenance("runs/x", None, None, None, None, None)
    assert ModelProvenance.from_dict(provenance.to_dict()) == provenance


def _dict_with(**changes: Any) -> dict[str, Any]:
    data = _provenance().to_dict()
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return data


_DROP = object()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "provenance must be an object, got list"),
        (_dict_with(rounds=_DROP), "provenance is missing rounds"),
        (_dict_with(signed_by="me"), "provenance has unknown fields signed_by"),
        (_dict_with(run=""), "run must be printable text of 1 to 4096 characters, got ''"),
        (_dict_with(run="a\nb"), r"run must be printable text .* got 'a\\nb'"),
        (_dict_with(run="x" * (MAX_TEXT + 1)), r"run must be printable text .* got 'x{80}\.\.\.'"),
        (_dict_with(run=7), "run must be printable text .* got 7"),
        (_dict_with(kind="Central Run"), "kind must be a short lowercase name such as 'central', got 'Central Run'"),
        (_dict_with(rounds=-1), "rounds must be an integer from 0 to 10+, got -1"),
        (_dict_with(rounds=True), "rounds must be an integer from 0 to 10+, got True"),
        (_dict_with(rounds=2.0), "rounds must be an integer from 0 to 10+, got 2.0"),
        (_dict_with(init_from=["runs/a"]), r"init_from must be printable text .* got \['runs/a'\]"),
        (_dict_with(trained_on="data/shk"), "trained_on: trained_on must be an object, got str"),
        (_dict_with(pretrained_on={"data": "d", "split": "proxy", "users": 1}), "pretrained_on: .*missing tokens"),
        (
            _dict_with(pretrained_on={"data": "d", "split": "proxy", "users": -5, "tokens": 1}),
            "pretrained_on: users must be an integer from 0 to 10+, got -5",
        ),
    ],
)
def test_provenance_from_dict_names_the_bad_field(data: object, message: str) -> None:
    with pytest.raises(ProvenanceError, match=message):
        ModelProvenance.from_dict(data)


def test_provenance_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _provenance().rounds = 9  # type: ignore[misc]
