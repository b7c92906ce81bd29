from __future__ import annotations

import pytest

from tff_sim.aggregators import build_aggregator, quantization_bits, upload_bytes

pytest.importorskip("tensorflow_federated")


def test_upload_bytes_float32_mean_and_dp() -> None:
    assert upload_bytes("mean", [(10,), (3,)]) == 52
    assert upload_bytes("dp", [(2, 5), (3,)]) == 52


def test_upload_bytes_quantized_is_the_wire_container() -> None:
    # payload: 10 -> 16 and 3 -> 4 coordinates after padding, one byte each at 8 bits; the rest is
    # wire.update's prefix, JSON header and checksum trailer
    payload = 16 + 4
    total = upload_bytes("quant8", [(10,), (3,)])
    assert 200 < total - payload < 500
    # the same header but for the decimals of the ranges
    assert abs((upload_bytes("quant2", [(1000,)]) - 1024 * 2 // 8) - (upload_bytes("quant8", [(1000,)]) - 1024)) < 8


def test_upload_bytes_quantized_about_four_times_smaller_than_float32() -> None:
    # the small model's kernels rotate in blocks without padding: 8 bits a coordinate, 4.00x below float32
    shapes = [(5000, 96), (96, 1024), (256, 768), (256,), (96, 256), (96,)]
    assert 3.99 < upload_bytes("mean", shapes) / upload_bytes("quant8", shapes) < 4.0


def test_quantization_bits() -> None:
    assert [quantization_bits(n) for n in ("quant8", "quant4", "quant2", "mean", "dp")] == [8, 4, 2, None, None]


def test_build_aggregator_quantized_needs_the_codec_process() -> None:
    with pytest.raises(ValueError, match="quant8 needs the clients' codec seeds"):
        build_aggregator("quant8", clients_per_round=5, noise_multiplier=1.0)


def test_build_aggregator_unknown_name() -> None:
    with pytest.raises(ValueError, match="quant3"):
        build_aggregator("quant3", clients_per_round=5, noise_multiplier=1.0)
