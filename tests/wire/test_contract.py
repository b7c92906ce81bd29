"""wire.contract: the client-training record validates every field and names the bad value."""

from __future__ import annotations

import pytest

from wire.contract import ClientTraining, ContractError


def test_client_training_defaults() -> None:
    t = ClientTraining()
    assert (t.local_epochs, t.learning_rate, t.max_rows, t.data_seed, t.codec, t.clip_norm) == (
        1,
        0.5,
        256,
        0,
        "float32",
        None,
    )
    assert t.replace(codec="quant8").codec == "quant8"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"local_epochs": 0}, "local_epochs must be a positive integer, got 0"),
        ({"local_epochs": True}, "local_epochs must be a positive integer, got True"),
        ({"learning_rate": 0.0}, "learning_rate must be a positive finite number, got 0.0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive finite number, got nan"),
        ({"max_rows": 0}, "max_rows must be a positive integer or None, got 0"),
        ({"data_seed": -1}, r"data_seed must be an integer in \[0, 2\*\*32\), got -1"),
        ({"data_seed": 2**32}, r"data_seed must be an integer in \[0, 2\*\*32\), got 4294967296"),
        ({"codec": "quant3"}, "codec must be one of float32, quant8, quant4, quant2, got 'quant3'"),
        ({"clip_norm": 0.0}, "clip_norm must be a positive finite number or None, got 0.0"),
        ({"clip_norm": float("inf")}, "clip_norm must be a positive finite number or None, got inf"),
    ],
)
def test_client_training_bad_values_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        ClientTraining(**fields)  # type: ignore[arg-type]
