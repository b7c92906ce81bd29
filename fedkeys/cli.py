"""The ``fedkeys`` command: one entry point, a subcommand per area.

Flags are read here and nowhere below: each subcommand builds a typed,
validated config and calls a library function. Heavy imports (TensorFlow)
happen inside the subcommands, so ``fedkeys --help`` is instant. Bad input
ends with one ``fedkeys: error: ...`` line and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fedkeys import _cli_coordinator, _cli_devices, _cli_export

logger = logging.getLogger("fedkeys")

# Areas that register their own subcommands (each module owns its flags and handlers).
_AREAS = (_cli_export, _cli_coordinator, _cli_devices)

_PRESETS = ("tiny", "small", "gboard")


def _quiet_tensorflow() -> None:
    # TensorFlow reads these at import; set before any subcommand imports it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    # fedkeys forks only to exec TFF's worker_binary; gRPC's fork handlers are for children that
    # keep using gRPC, and with a runtime's threads running they only log and get in the way.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from data_tools import PrepareConfig, default_cache_dir, prepare_corpus

    config = PrepareConfig(
        min_words=args.min_words,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        proxy_fraction=args.proxy_fraction,
        split_seed=args.split_seed,
        vocab_size=args.vocab_size,
        skip_bad=args.skip_bad,
    )
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir(os.environ)
    stats = prepare_corpus(
        args.corpus, Path(args.out), config, cache_dir=cache, progress=not args.no_progress, overwrite=args.overwrite
    )
    keys = (
        "users",
        "dropped_users",
        "train_users",
        "validation_users",
        "test_users",
        "examples",
        "words",
        "vocab_size",
        "oov_rate",
    )
    _print_table(f"prepared {args.corpus} -> {args.out}", {k: stats[k] for k in keys if k in stats})
    return 0


def _cmd_central_train(args: argparse.Namespace) -> int:
    from fedkeys.baselines import CentralRunConfig, run_central
    from model import CentralConfig

    run = CentralRunConfig(
        preset=args.model,
        cell=args.cell,
        seq_len=args.seq_len,
        init_seed=args.init_seed,
        split=args.split,
        training=CentralConfig(
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            learning_rate=args.learning_rate,
            patience=args.patience,
            shuffle_seed=args.shuffle_seed,
            max_steps_per_epoch=args.max_steps_per_epoch,
        ),
    )
    summary = run_central(Path(args.data), Path(args.out), run, progress=not args.no_progress, overwrite=args.overwrite)
    _print_table(f"central ({args.model}) on test users -> {args.out}", _headline(summary))
    return 0


def _cmd_ngram(args: argparse.Namespace) -> int:
    from fedkeys.baselines import NgramRunConfig, run_ngram

    summary = run_ngram(Path(args.data), Path(args.out), NgramRunConfig(order=args.order), overwrite=args.overwrite)
    _print_table(f"{args.order}-gram Kneser-Ney on test users -> {args.out}", _headline(summary))
    return 0


def _cmd_sim_run(args: argparse.Namespace) -> int:
    from fedkeys.run_dir import read_summary
    from tff_sim.availability import AvailabilityConfig
    from tff_sim.config import SimConfig, split_aggregator
    from tff_sim.runtime import RuntimeConfig
    from tff_sim.schedules import Schedule
    from tff_sim.simulation import run_simulation
    from wire.contract import ClientTraining

    aggregator, codec = split_aggregator(args.aggregator)
    training = ClientTraining(
        local_epochs=args.local_epochs,
        learning_rate=args.client_lr,
        max_rows=args.max_client_rows,
        data_seed=args.seed,
        codec=codec,
    )
    sim = SimConfig(
        algorithm=args.algorithm,
        rounds=args.rounds,
        clients_per_round=args.clients_per_round,
        training=training,
        server_lr=args.server_lr,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        preset=args.model,
        seed=args.seed,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        max_eval_clients=args.max_eval_clients,
        availability=AvailabilityConfig(mode=args.availability, seed=args.seed),
        aggregator=aggregator,
        dp_noise_multiplier=args.dp_noise_multiplier,
        server_epsilon=args.server_epsilon,
        client_lr_schedule=Schedule(args.client_lr_warmup, args.client_lr_decay, args.lr_final_scale),
        server_lr_schedule=Schedule(args.server_lr_warmup, args.server_lr_decay, args.lr_final_scale),
    )
    remote = tuple(w for w in (args.workers or "").split(",") if w)
    runtime = RuntimeConfig(local_workers=args.local_workers, remote=remote)
    references = {}
    for name, run in (("central", args.central), ("n-gram", args.ngram)):
        if run:
            references[f"{name} recall@1 (test)"] = float(read_summary(Path(run))["test"]["recall_at_1"])
    summary = run_simulation(
        Path(args.data),
        Path(args.out),
        sim,
        runtime,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        references=references,
        init_from=Path(args.init_from) if args.init_from else None,
    )
    _print_table(f"{args.algorithm} simulation on test users -> {args.out}", _headline(summary))
    return 0


def _cmd_sim_worker(args: argparse.Namespace) -> int:
    from tff_sim.runtime import serve_worker

    return serve_worker(args.port, Path(args.log) if args.log else None)


def _cmd_suggest(args: argparse.Namespace) -> int:
    from fedkeys.suggest import suggest

    print(" | ".join(suggest(Path(args.model), args.text, k=args.k)))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from data_tools import default_cache_dir
    from fedkeys.demo import run_demo
    from fedkeys.demo_config import DemoConfig

    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir(os.environ)
    settings = {name: getattr(args, name) for name in _DEMO_FLAGS if getattr(args, name) is not None}
    if args.data is not None:
        settings["data"] = Path(args.data)
    if args.init_from is not None:
        settings["init_from"] = Path(args.init_from)
    config = DemoConfig(preset=args.model, **settings)
    report = run_demo(Path(args.out), config, cache_dir=cache, progress=not args.no_progress)
    print(report)
    return 0


# DemoConfig fields settable from the command line (the hidden ones size the demo for tests).
_DEMO_FLAGS: dict[str, type] = {
    "corpus": str, "vocab_size": int, "min_words": int, "seq_len": int, "batch_size": int, "proxy_fraction": float,
    "pretrain_epochs": int, "pretrain_max_steps": int, "pretrain_lr": float, "rounds": int, "clients_per_round": int,
    "local_epochs": int, "client_lr": float,
    "max_rows": int, "eval_every": int, "eval_users": int, "devices": int, "availability": str, "speedup": float,
    "dropout": float, "codec": str, "concurrency": int, "fleet_timeout_s": float, "parity_clients": int, "seed": int,
}  # fmt: skip
_DEMO_SHOWN = {"vocab_size": "vocabulary size", "rounds": "rounds of simulation and of deployment",
               "devices": "emulated phones", "seed": "every seed of the demo"}  # fmt: skip


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    test = summary["test"]
    keys = ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "recall_at_3_no_oov", "perplexity", "tokens")
    return {k: test[k] for k in keys} | {"wall_time_s": summary["wall_time_s"]}


def _print_table(title: str, rows: dict[str, Any]) -> None:
    print(title)
    for key, value in rows.items():
        shown = f"{value:.4f}" if isinstance(value, float) else json.dumps(value)
        print(f"  {key:<22} {shown}")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedkeys", description="Federated training of a phone keyboard's next-word model."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="prepare user-typing corpora").add_subparsers(dest="action", required=True)
    prep = data.add_parser("prepare", help="corpus -> per-user federated dataset")
    prep.add_argument("--corpus", required=True, help="shakespeare | jsonl:PATH[.gz] | irc:DIR")
    prep.add_argument("--out", required=True, help="output directory")
    prep.add_argument("--vocab-size", type=int, default=10000)
    prep.add_argument("--min-words", type=int, default=20, help="drop users with fewer words")
    prep.add_argument("--validation-fraction", type=float, default=0.1)
    prep.add_argument("--test-fraction", type=float, default=0.1)
    prep.add_argument(
        "--proxy-fraction",
        type=float,
        default=0.0,
        help="share of users set aside as public/proxy data for `central train --split proxy` (pretraining)",
    )
    prep.add_argument("--split-seed", type=int, default=0, help="seed of the user hash split")
    prep.add_argument("--skip-bad", action="store_true", help="skip and count bad lines instead of failing")
    prep.add_argument("--cache-dir", help="download cache (default $FEDKEYS_CACHE or ~/.cache/fedkeys)")
    _add_common(prep)
    prep.set_defaults(func=_cmd_data_prepare)

    central = sub.add_parser("central", help="the centrally trained reference").add_subparsers(
        dest="action", required=True
    )
    train = central.add_parser("train", help="train on pooled training users, early-stop on validation users")
    train.add_argument("--data", required=True, help="a prepared data directory")
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--model", choices=_PRESETS, default="small")
    train.add_argument("--cell", choices=("cifg", "lstm"), help="override the preset's cell")
    train.add_argument("--epochs", type=int, default=10, help="maximum epochs")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--patience", type=int, default=1, help="early-stopping patience in epochs")
    train.add_argument("--seq-len", type=int, default=20)
    train.add_argument("--init-seed", type=int, default=0, help="seed of the initial weights")
    train.add_argument("--shuffle-seed", type=int, default=0, help="seed of the batch order")
    train.add_argument("--max-steps-per-epoch", type=int)
    train.add_argument(
        "--split",
        choices=("train", "proxy"),
        default="train",
        help="train on the training users (the central reference) or on the proxy users (pretraining for "
        "`sim run --init-from`)",
    )
    _add_common(train)
    train.set_defaults(func=_cmd_central_train)

    ngram = sub.add_parser("ngram", help="the Kneser-Ney n-gram reference")
    ngram.add_argument("--data", required=True)
    ngram.add_argument("--out", required=True)
    ngram.add_argument("--order", type=int, default=3)
    ngram.add_argument("--overwrite", action="store_true")
    ngram.set_defaults(func=_cmd_ngram)

    sim = sub.add_parser("sim", help="federated training in TFF simulation").add_subparsers(
        dest="action", required=True
    )
    from tff_sim.config import ALGORITHMS, RECIPE_SOURCE, SimConfig
    from tff_sim.schedules import DECAYS

    recipe = SimConfig()  # the defaults live there, with the measurement they come from
    run = sim.add_parser(
        "run",
        help="simulate federated training rounds",
        description=f"Simulate federated training in TFF. Default recipe: {RECIPE_SOURCE}",
    )
    run.add_argument("--data", required=True, help="a prepared data directory")
    run.add_argument("--out", required=True, help="run directory (state, metrics.csv, summary.json, checkpoint)")
    run.add_argument("--algorithm", choices=ALGORITHMS, default=recipe.algorithm)
    run.add_argument("--rounds", type=int, default=recipe.rounds)
    run.add_argument("--clients-per-round", type=int, default=recipe.clients_per_round)
    run.add_argument("--local-epochs", type=int, default=recipe.training.local_epochs)
    run.add_argument("--client-lr", type=float, default=recipe.training.learning_rate)
    run.add_argument("--server-lr", type=float, help="default depends on the algorithm")
    run.add_argument("--server-epsilon", type=float, default=recipe.server_epsilon, help="fedadam/fedyogi epsilon")
    for side in ("client", "server"):
        schedule = getattr(recipe, f"{side}_lr_schedule")
        run.add_argument(
            f"--{side}-lr-warmup", type=int, default=schedule.warmup_rounds, help=f"{side} lr warmup rounds"
        )
        run.add_argument(
            f"--{side}-lr-decay", choices=DECAYS, default=schedule.decay, help=f"{side} lr decay over the run"
        )
    run.add_argument(
        "--lr-final-scale",
        type=float,
        default=recipe.client_lr_schedule.final_scale,
        help="a decayed learning rate ends at this share of its base rate",
    )
    run.add_argument(
        "--init-from",
        help="start from this run's checkpoint (e.g. `central train --split proxy`: pretraining) instead of "
        "the seeded initialization",
    )
    run.add_argument("--batch-size", type=int, default=recipe.batch_size)
    run.add_argument("--seq-len", type=int, default=20)
    run.add_argument("--model", choices=_PRESETS, default="small")
    run.add_argument("--seed", type=int, default=0, help="seeds sampling, shuffling, availability and init")
    run.add_argument("--eval-every", type=int, default=5, help="evaluate on validation users every R rounds")
    run.add_argument("--checkpoint-every", type=int, default=5, help="save the round state every R rounds")
    run.add_argument("--max-eval-clients", type=int, help="evaluate on a fixed sample of validation users")
    run.add_argument(
        "--max-client-rows", type=int, default=recipe.training.max_rows, help="cap on a client's rows per round"
    )
    run.add_argument("--availability", choices=("always", "diurnal"), default="always")
    run.add_argument(
        "--aggregator",
        choices=("mean", "quant8", "quant4", "quant2", "dp"),
        default="mean",
        help="float32 mean, b-bit rotated quantization, or central DP with adaptive clipping",
    )
    run.add_argument("--dp-noise-multiplier", type=float, default=1.0)
    run.add_argument("--workers", help="host:port,host:port of `fedkeys sim worker` processes")
    run.add_argument("--local-workers", type=int, default=1, help="TFF workers to start on this machine")
    run.add_argument("--central", help="a central run directory, drawn as a reference")
    run.add_argument("--ngram", help="an n-gram run directory, drawn as a reference")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its last round")
    _add_common(run)
    run.set_defaults(func=_cmd_sim_run)
    worker = sim.add_parser("worker", help="run one TFF executor service (worker_binary) for --workers")
    worker.add_argument("--port", type=int, required=True)
    worker.add_argument("--log", help="write the worker's output to this file")
    worker.set_defaults(func=_cmd_sim_worker)

    sug = sub.add_parser("suggest", help="the top next words for a context")
    sug.add_argument("--model", required=True, help="a run directory, or ART/infer.tflite from `fedkeys export tflite`")
    sug.add_argument("-k", type=int, default=3)
    sug.add_argument("text")
    sug.set_defaults(func=_cmd_suggest)

    demo = sub.add_parser(
        "demo", help="end to end on Shakespeare: references, TFF simulation, export, coordinator, emulated phones"
    )
    demo.add_argument("--out", default="runs/demo", help="where the report (report.html) and every run go")
    demo.add_argument("--model", choices=_PRESETS, default="small")
    demo.add_argument("--cache-dir")
    demo.add_argument("--no-progress", action="store_true")
    demo.add_argument("--data", help=argparse.SUPPRESS)  # an already prepared corpus (tests)
    demo.add_argument(
        "--init-from", help="start simulation and deployment from this run instead of pretraining on proxy users"
    )
    for name, kind in _DEMO_FLAGS.items():
        demo.add_argument(f"--{name.replace('_', '-')}", type=kind, help=_DEMO_SHOWN.get(name, argparse.SUPPRESS))
    demo.set_defaults(func=_cmd_demo)

    for area in _AREAS:
        area.register(sub)
    return parser


def _domain_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input, shown as one line rather than a traceback."""
    from data_tools import CorpusError
    from fedkeys.run_dir import RunDirError
    from tff_sim.runtime import WorkerDiedError

    errors: list[type[BaseException]] = [
        CorpusError,
        RunDirError,
        WorkerDiedError,  # not bad input, but one line naming the worker's log beats a traceback
        ValueError,
        FileNotFoundError,
        NotADirectoryError,
        PermissionError,
    ]
    for area in _AREAS:
        errors.extend(area.domain_errors())
    return tuple(errors)  # model.CheckpointError and tff_sim's SimulationError are ValueErrors


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _quiet_tensorflow()
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("fedkeys: interrupted", file=sys.stderr)
        return 130
    except _domain_errors() as err:
        logger.debug("bad input", exc_info=True)
        print(f"fedkeys: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
