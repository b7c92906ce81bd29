"""tff_sim.aggregators_codec: one TFF round with the devices' codec equals the mean of what phones would upload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_tools import load_prepared
from tff_sim.aggregators_codec import DeviceCodecFactory, client_input, codec_seed, round_codec_seeds
from tff_sim.algorithms import build_process, model_fn_for
from tff_sim.client_datasets import round_datasets
from tff_sim.config import SimConfig
from tff_sim.runtime import RuntimeConfig, tff_runtime
from tff_sim.simulation import sim_model_config
from wire.contract import ClientTraining
from wire.update import decode_update, encode_update

tff = pytest.importorskip("tensorflow_federated")

_ROTATION = 2**32 - 9  # the round's rotation seed, shared by both clients


def _deltas(
    prepared: Path, aggregator: str, inputs: list[list[int]], seeds: list[int], tmp_path: Path
) -> list[list[np.ndarray]]:
    """Per client list in ``inputs``, the model delta of one round from the same initial model over those clients."""
    corpus = load_prepared(prepared)
    training = ClientTraining(codec="float32" if aggregator == "mean" else aggregator)
    sim = SimConfig(algorithm="fedavg", rounds=1, clients_per_round=2, preset="tiny", batch_size=8, training=training)
    config = sim_model_config(corpus.tokenizer.vocab_size, sim.preset)
    process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
    out = []
    with tff_runtime(RuntimeConfig(log_dir=tmp_path / aggregator), default_num_clients=2):
        state = process.initialize()
        before = process.get_model_weights(state).trainable
        for clients in inputs:
            datasets, _ = round_datasets(
                corpus.train, clients, config, sim.seq_len, sim.batch_size, epochs=1, seed=0, round_num=1, max_rows=256
            )
            if aggregator != "mean":
                datasets = [client_input(d, (_ROTATION, seeds[c])) for d, c in zip(datasets, clients, strict=True)]
            after = process.get_model_weights(process.next(state, datasets).state).trainable
            out.append(
                [np.asarray(a, np.float64) - np.asarray(b, np.float64) for a, b in zip(after, before, strict=True)]
            )
    return out


def _tokens(prepared: Path, client: int) -> float:
    corpus = load_prepared(prepared)
    config = sim_model_config(corpus.tokenizer.vocab_size, "tiny")
    return float(round_datasets(corpus.train, [client], config, 20, 8, epochs=1, seed=0, round_num=1, max_rows=256)[1])


def test_quant8_round_is_the_weighted_mean_of_decoded_phone_uploads(prepared: Path, tmp_path: Path) -> None:
    """Each client's exact delta (a one-client float32 round), encoded by wire.update with its seed, decoded and
    averaged by tokens, is the simulated quant8 round: the same levels, so only the mean's float32 sums differ."""
    seeds = [11, 2**32 - 5]
    alone = _deltas(prepared, "mean", [[0], [1]], seeds, tmp_path)
    [simulated] = _deltas(prepared, "quant8", [[0, 1]], seeds, tmp_path)
    tokens = [_tokens(prepared, 0), _tokens(prepared, 1)]
    decoded = [
        decode_update(
            encode_update(
                [d.astype(np.float32) for d in delta],
                codec="quant8",
                round=1,
                base_version=0,
                weight=w,
                seed=s,
                rotation_seed=_ROTATION,
            )
        ).decode_tensors()
        for delta, w, s in zip(alone, tokens, seeds, strict=True)
    ]
    expected = [(tokens[0] * a + tokens[1] * b) / sum(tokens) for a, b in zip(*decoded, strict=True)]
    exact_mean = [(tokens[0] * a + tokens[1] * b) / sum(tokens) for a, b in zip(*alone, strict=True)]
    worst = max(float(np.max(np.abs(s - e))) for s, e in zip(simulated, expected, strict=True))
    noise = max(float(np.max(np.abs(e - m))) for e, m in zip(expected, exact_mean, strict=True))
    assert worst < 1e-6  # float32 weighted sums against float64
    assert noise > 100 * worst  # and the quantization noise itself is far larger: the test can tell codecs apart


def test_round_codec_seeds_share_the_rounds_rotation() -> None:
    from wire.codec import round_rotation_seed

    seeds = round_codec_seeds(5, 3, [0, 7])
    assert [s[0] for s in seeds] == [round_rotation_seed(5, 3)] * 2  # as the coordinator derives a round's
    assert seeds[0][1] == codec_seed(5, 3, 0) != seeds[1][1] == codec_seed(5, 3, 7)


def test_codec_seed_is_32_bits_and_depends_on_every_argument() -> None:
    seeds = {codec_seed(0, 1, 2), codec_seed(1, 1, 2), codec_seed(0, 2, 2), codec_seed(0, 1, 3)}
    assert len(seeds) == 4 and all(0 <= s < 2**32 for s in seeds)
    assert codec_seed(0, 1, 2) == codec_seed(0, 1, 2)


def test_device_codec_factory_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="bits must be between 1 and 8, got 9"):
        DeviceCodecFactory(9)
    with pytest.raises(ValueError, match="clip_norm must be positive, got 0"):
        DeviceCodecFactory(8, clip_norm=0)


def test_upload_bytes_is_the_wire_update_size() -> None:
    from tff_sim.aggregators import upload_bytes

    shapes = [(5, 7), (1500,)]
    blob = encode_update(
        [np.full(s, 1e-3, np.float32) for s in shapes],
        codec="quant8",
        round=1,
        base_version=1,
        weight=1.0,
        seed=3,
        rotation_seed=4,
    )
    assert abs(upload_bytes("quant8", shapes) - decode_update(blob).nbytes) < 40
    assert upload_bytes("mean", shapes) == 4 * (35 + 1500)
