"""``fedkeys sim run``: federated training of the keyboard model in TFF simulation.

Composes the pieces: availability and sampling pick each round's clients from
(seed, round); their messages become datasets; TFF's learning process runs the
round on the owned runtime; TFF's federated evaluation scores validation users
every few rounds and test users at the end; the state is checkpointed every
round so ``--resume`` continues exactly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff
from tqdm.auto import tqdm

from data_tools import BOS_ID, EOS_ID, PAD_ID, UNK_ID, ClientData, load_prepared
from fedkeys_errors import FedkeysError
from model import ModelConfig, build_model, load_checkpoint, save_model
from privacy import SAMPLING_ASSUMPTION, default_delta, dp_epsilon
from tff_sim.aggregators import upload_bytes
from tff_sim.aggregators_codec import client_input, round_codec_seeds
from tff_sim.algorithms import build_evaluation, build_process, model_fn_for, uses_codec_seeds
from tff_sim.availability import eligible_clients
from tff_sim.client_datasets import client_rows, round_datasets, to_dataset
from tff_sim.config import SimConfig
from tff_sim.program_state import RoundCheckpoints
from tff_sim.run_log import RunLog, plot_recall
from tff_sim.runtime import RuntimeConfig, tff_runtime
from tff_sim.sampling import sample_clients
from tff_sim.schedules import scale_at

logger = logging.getLogger(__name__)

_EVAL_BATCH = 64
_EVAL_SALT = 0xE7A1
_STATE_DIR = "state"
_METRIC_KEYS = ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "recall_at_3_no_oov", "perplexity", "tokens")


class SimulationError(FedkeysError, ValueError):
    """A simulation that cannot start: bad run directory, nothing to resume, no clients."""


class DivergedError(SimulationError):
    """Training blew up: client updates stopped being finite, and TFF drops those, so later rounds would do nothing."""


def divergence(train_metrics: Mapping[str, Any], update_non_finite: int) -> str | None:
    """Why a round's training diverged, or None.

    TFF's FedAvg zeroes the weight of a client whose update is not finite, and
    its server skips an aggregate that is not finite (``update_non_finite``).
    A round where every client was dropped that way (no examples counted)
    changed nothing, and all later rounds would silently do the same.
    """
    if update_non_finite:
        return "the aggregated update was not finite"
    if int(train_metrics["num_examples"]) == 0:
        return "every client's update was not finite (TFF dropped them all)"
    if not math.isfinite(float(train_metrics["loss"])):
        return f"the training loss is {float(train_metrics['loss'])}"
    return None


def log_tokens(rows: Sequence[Mapping[str, str]]) -> int:
    """Training tokens summed over a run's logged rounds (what federated training saw)."""
    return sum(int(float(r["train_tokens"])) for r in rows if r.get("train_tokens"))


def round_learning_rates(sim: SimConfig, round_num: int) -> tuple[float, float]:
    """(client lr, server lr) of a round: the base rates scaled by their schedules."""
    return (
        sim.training.learning_rate * scale_at(sim.client_lr_schedule, round_num, sim.rounds),
        sim.effective_server_lr * scale_at(sim.server_lr_schedule, round_num, sim.rounds),
    )


def set_round_rates(process: Any, state: Any, sim: SimConfig, round_num: int) -> Any:
    """Write the round's scheduled rates into the optimizers' hyperparameters in the TFF state."""
    if sim.client_lr_schedule.is_constant and sim.server_lr_schedule.is_constant:
        return state
    client_lr, server_lr = round_learning_rates(sim, round_num)
    hparams = process.get_hparams(state)
    if "learning_rate" in hparams["client_work"]:  # fedsgd has no client optimizer
        hparams["client_work"]["learning_rate"] = np.float32(client_lr)
    hparams["finalizer"]["learning_rate"] = np.float32(server_lr)
    return process.set_hparams(state, hparams)


@dataclasses.dataclass(frozen=True)
class InitialModel:
    """Weights a run starts from instead of its seeded initialization, and where they came from."""

    weights: list[np.ndarray]
    provenance: dict[str, Any]


def load_initial_model(run_or_checkpoint: Path, config: ModelConfig) -> InitialModel:
    """The checkpoint of a run directory (central, simulation, downloaded) or a checkpoint directory.

    Pretraining on public or proxy data, then training federated on users'
    phones is how production keyboards start (Xu et al. 2023; Nguyen et al.
    2023, "Where to Begin?"). The provenance (the run's ``trained_on`` and
    ``kind``) goes into this run's summary.
    """
    directory = run_or_checkpoint / "checkpoint"
    if not directory.is_dir():
        directory = run_or_checkpoint
    init_config, weights = load_checkpoint(directory)
    if init_config != config:
        raise SimulationError(
            f"--init-from {run_or_checkpoint}: its model ({init_config.to_dict()}) is not this run's "
            f"({config.to_dict()}); use the same --model and prepared data"
        )
    provenance: dict[str, Any] = {"run": str(run_or_checkpoint)}
    summary_path = run_or_checkpoint / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        provenance |= {k: summary[k] for k in ("kind", "trained_on", "rounds", "test") if k in summary}
    return InitialModel(weights, provenance)


def sim_model_config(vocab_size: int, preset: str) -> ModelConfig:
    return ModelConfig.from_preset(preset, vocab_size, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID)


def _eval_clients(data: ClientData, limit: int | None, seed: int) -> np.ndarray:
    clients = np.arange(data.num_clients)
    if limit is not None and limit < len(clients):
        clients = np.sort(np.random.default_rng([seed, _EVAL_SALT]).choice(clients, size=limit, replace=False))
    return clients


def _eval_datasets(
    data: ClientData, clients: Sequence[int] | np.ndarray, config: ModelConfig, seq_len: int
) -> list[tf.data.Dataset]:
    """All rows of each client, unshuffled: built once, reused at every evaluation."""
    return [
        to_dataset(client_rows(data, int(c), config, seq_len, seed=0, round_num=0, max_rows=None), _EVAL_BATCH)
        for c in clients
    ]


def _evaluate(evaluation: Any, weights: Any, datasets: list[tf.data.Dataset]) -> dict[str, float]:
    state = evaluation.set_model_weights(evaluation.initialize(), weights)
    metrics = evaluation.next(state, datasets).metrics["client_work"]["eval"]["current_round_metrics"]
    return {k: float(v) for k, v in metrics.items()}


@dataclasses.dataclass(frozen=True)
class SampledRound:
    """One round's clients (sampled among the eligible) and their datasets."""

    clients: np.ndarray
    eligible: int
    datasets: list[Any]  # tf.data.Dataset, or aggregators_codec.client_input with the devices' codec
    tokens: int


def sampled_round(data: ClientData, sim: SimConfig, config: ModelConfig, round_num: int) -> SampledRound:
    """Availability, then sampling from (seed, round), then the clients' datasets."""
    eligible = eligible_clients(data.num_clients, round_num, sim.availability)
    clients = sample_clients(eligible, sim.clients_per_round, sim.seed, round_num)
    datasets, tokens = round_datasets(
        data, clients, config, sim.seq_len, sim.batch_size,
        epochs=sim.training.local_epochs, seed=sim.training.data_seed, round_num=round_num,
        max_rows=sim.training.max_rows,
    )  # fmt: skip
    if uses_codec_seeds(sim):  # the devices' codec: the round's rotation, each client's own rounding
        seeds = round_codec_seeds(sim.seed, round_num, clients)
        datasets = [client_input(d, s) for d, s in zip(datasets, seeds, strict=True)]
    return SampledRound(clients, len(eligible), datasets, tokens)


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (out / _STATE_DIR).is_dir():
            raise SimulationError(f"nothing to resume in {out}: no {_STATE_DIR}/ directory")
        return
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SimulationError(f"{out} already exists and is not empty (pass --resume or --overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run_simulation(
    data_dir: Path,
    out: Path,
    sim: SimConfig,
    runtime: RuntimeConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    references: dict[str, float] | None = None,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Run ``sim.rounds`` rounds into ``out`` and return the summary.

    ``init_from``: start from that run's (or checkpoint's) weights, e.g. a
    model pretrained with ``central train --split proxy``.
    """
    corpus = load_prepared(data_dir)
    if corpus.train.num_clients == 0 or corpus.test.num_clients == 0:
        raise SimulationError(f"{data_dir}: the simulation needs training and test users")
    config = sim_model_config(corpus.tokenizer.vocab_size, sim.preset)
    initial = None if init_from is None else load_initial_model(init_from, config)
    _prepare_out(out, resume, overwrite)
    process = build_process(sim, model_fn_for(config, sim.seq_len, sim.seed))
    evaluation = build_evaluation(model_fn_for(config, sim.seq_len, sim.seed, with_metrics=True))
    checkpoints = RoundCheckpoints(out / _STATE_DIR)
    (out / "config.json").write_text(
        json.dumps(
            {
                "sim": sim.to_dict(),
                "model": config.to_dict(),
                "data": str(corpus.data_dir),
                "init_from": None if initial is None else initial.provenance,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    keras_model = build_model(config)
    tensor_shapes = [tuple(w.shape) for w in keras_model.trainable_weights]
    upload_bytes_per_client = upload_bytes(sim.aggregator_name, tensor_shapes)
    val_clients = _eval_clients(corpus.validation, sim.max_eval_clients, sim.seed)
    val_datasets = _eval_datasets(corpus.validation, val_clients, config, sim.seq_len)
    started = time.perf_counter()

    with tff_runtime(dataclasses.replace(runtime, log_dir=out / "logs"), default_num_clients=sim.clients_per_round):
        state = process.initialize()
        if initial is not None:
            state = process.set_model_weights(
                state, tff.learning.models.ModelWeights(trainable=initial.weights, non_trainable=[])
            )
        first_round = 1
        if resume:
            restored = checkpoints.load_latest(state)
            if restored is None:
                # Killed before its first checkpoint: nothing was lost but time, start over.
                logger.warning("no saved round in %s; starting from round 1", out / _STATE_DIR)
            else:
                state, last = restored
                first_round = last + 1
                logger.info("resuming %s after round %d", out, last)
        log = RunLog(out, resume_after=first_round - 1)
        bar = tqdm(
            range(first_round, sim.rounds + 1),
            desc=f"{sim.algorithm} rounds",
            unit="round",
            disable=not progress,
            initial=first_round - 1,
            total=sim.rounds,
        )
        for round_num in bar:
            round_start = time.perf_counter()
            sampled = sampled_round(corpus.train, sim, config, round_num)
            row: dict[str, Any] = {"round": round_num, "clients": len(sampled.clients), "eligible": sampled.eligible}
            if len(sampled.clients):
                state = set_round_rates(process, state, sim, round_num)
                result = process.next(state, sampled.datasets)
                train = result.metrics["client_work"]["train"]
                why = divergence(train, int(result.metrics.get("finalizer", {}).get("update_non_finite", 0)))
                if why is not None:
                    # Neither logged nor saved: the run directory stays resumable from its last checkpoint.
                    raise DivergedError(
                        f"round {round_num} diverged: {why}, with client lr {sim.training.learning_rate:g} and "
                        f"server lr {sim.effective_server_lr:g}; lower the learning rates"
                    )
                state = result.state
                client_lr, server_lr = round_learning_rates(sim, round_num)
                row |= {
                    "loss": float(train["loss"]),
                    "client_lr": round(client_lr, 6),
                    "server_lr": round(server_lr, 6),
                    "train_tokens": sampled.tokens,
                    "upload_bytes": upload_bytes_per_client * len(sampled.clients),
                }
            if round_num % sim.eval_every == 0 or round_num == sim.rounds:
                metrics = _evaluate(evaluation, process.get_model_weights(state), val_datasets)
                row |= {f"val_{k}": metrics[k] for k in _METRIC_KEYS if k in metrics}
            row["seconds"] = round(time.perf_counter() - round_start, 3)
            log.append(row)
            if round_num % sim.checkpoint_every == 0 or round_num == sim.rounds:
                checkpoints.save(state, round_num)
            bar.set_postfix(
                loss=f"{row.get('loss', float('nan')):.3f}", val_r1=f"{row.get('val_recall_at_1', float('nan')):.3f}"
            )
        bar.close()
        weights = process.get_model_weights(state)
        test_datasets = _eval_datasets(corpus.test, np.arange(corpus.test.num_clients), config, sim.seq_len)
        test = _evaluate(evaluation, weights, test_datasets)

    for variable, value in zip(keras_model.trainable_weights, weights.trainable, strict=True):
        variable.assign(value)
    save_model(out / "checkpoint", config, keras_model)
    shutil.copyfile(corpus.data_dir / "tokenizer.model", out / "tokenizer.model")
    plot_recall(log.rows(), out / "recall.png", references or {}, title=f"{sim.algorithm}, {sim.preset} model")
    summary = {
        "kind": "simulation",
        "algorithm": sim.algorithm,
        "rounds": sim.rounds,
        "test": {k: test[k] for k in (*_METRIC_KEYS, "oov_targets", "loss") if k in test},
        "aggregator": sim.aggregator_name,
        "upload_bytes_per_client": upload_bytes_per_client,
        "float32_bytes_per_client": upload_bytes("mean", tensor_shapes),
        "config": sim.to_dict(),
        "trained_on": {
            "data": str(corpus.data_dir),
            "split": "train",
            "users": corpus.train.num_clients,
            "tokens": int(log_tokens(log.rows())),
        },
        "init_from": None if initial is None else initial.provenance,
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    if sim.aggregator == "dp":
        population = corpus.train.num_clients
        delta = default_delta(population)
        summary["privacy"] = {
            "noise_multiplier": sim.dp_noise_multiplier,
            "delta": delta,
            "epsilon": dp_epsilon(
                noise_multiplier=sim.dp_noise_multiplier,
                clients_per_round=min(sim.clients_per_round, population),
                population=population,
                rounds=sim.rounds,
                delta=delta,
            ),
            "accounting": SAMPLING_ASSUMPTION + "; uniform availability assumed",
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    tf.keras.backend.clear_session()
    return summary
