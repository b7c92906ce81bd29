from __future__ import annotations

import pytest

from tff_sim.aggregators import build_aggregator, quantization_bits, upload_bytes

pytest.importorskip("tensorflow_federated")


def test_upload_bytes_float32_mean_and_dp() -> None:
    assert upload_bytes("mean", [10, 3]) == 52
    assert upload_bytes("dp", [10, 3]) == 52


def test_upload_bytes_quantized_counts_padding_and_ranges() -> None:
    # 10 -> 16 and 3 -> 4 coordinates after the Hadamard padding; 8 bytes of range per tensor.
    assert upload_bytes("quant8", [10, 3]) == 16 + 8 + 4 + 8
    assert upload_bytes("quant2", [1000]) == 1024 * 2 // 8 + 8
    assert upload_bytes("quant4", [1]) == 1 + 8


def test_upload_bytes_quantized_much_smaller_than_float32() -> None:
    sizes = [960_000, 96, 270_336, 24_576, 768]
    assert upload_bytes("quant8", sizes) < upload_bytes("mean", sizes) / 3


def test_quantization_bits() -> None:
    assert [quantization_bits(n) for n in ("quant8", "quant4", "quant2", "mean", "dp")] == [8, 4, 2, None, None]


def test_build_aggregator_unknown_name() -> None:
    with pytest.raises(ValueError, match="quant3"):
        build_aggregator("quant3", clients_per_round=5, noise_multiplier=1.0)
