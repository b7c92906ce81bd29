"""``fedkeys sim run`` and ``fedkeys sim worker``: federated training in TFF simulation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fedkeys._cli_common import (
    PRESETS,
    UsageError,
    add_alias,
    add_command,
    add_group,
    add_output,
    build,
    non_negative_float,
    non_negative_int,
    port,
    positive_float,
    positive_int,
    print_table,
)


def _check_population(data: Path, clients_per_round: int) -> None:
    """A round cannot sample more clients than there are training users (refused, not silently cut)."""
    from data_tools import load_prepared

    users = load_prepared(data, mmap=True).train.num_clients
    if clients_per_round > users:
        raise UsageError(f"--clients-per-round {clients_per_round} is more than the {users} training users of {data}")


def _cmd_run(args: argparse.Namespace) -> int:
    from fedkeys._cli_baselines import headline

    summary = _simulate(args)
    print_table(f"{args.algorithm} simulation on test users -> {args.out}", headline(summary))
    return 0


def _simulate(args: argparse.Namespace) -> dict[str, Any]:
    """One ``sim run`` from its parsed flags: the configs are built (and refused) before TensorFlow is imported."""
    from fedkeys.run_dir import read_summary
    from tff_sim.availability import AvailabilityConfig
    from tff_sim.config import SimConfig, split_aggregator
    from tff_sim.runtime import RuntimeConfig
    from tff_sim.schedules import Schedule
    from wire.contract import ClientTraining

    client_schedule = build(Schedule, warmup_rounds=args.client_lr_warmup, decay=args.client_lr_decay,
                            final_scale=args.lr_final_scale)  # fmt: skip
    server_schedule = build(Schedule, warmup_rounds=args.server_lr_warmup, decay=args.server_lr_decay,
                            final_scale=args.lr_final_scale)  # fmt: skip
    aggregator, codec = split_aggregator(args.aggregator)  # the choices are AGGREGATORS: cannot fail
    training = build(
        ClientTraining, local_epochs=args.local_epochs, learning_rate=args.client_lr, max_rows=args.max_rows,
        data_seed=args.seed, codec=codec,
    )  # fmt: skip
    sim = build(
        SimConfig,
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
        client_lr_schedule=client_schedule,
        server_lr_schedule=server_schedule,
    )
    _check_population(Path(args.data), args.clients_per_round)
    remote = tuple(w for w in (args.workers or "").split(",") if w)
    runtime = build(RuntimeConfig, local_workers=args.local_workers, remote=remote)
    references = {}
    for name, run in (("central", args.central), ("n-gram", args.ngram)):
        if run:
            references[f"{name} recall@1 (test)"] = float(read_summary(Path(run))["test"]["recall_at_1"])
    from tff_sim.simulation import run_simulation  # TensorFlow: only once the flags are known to be good

    return run_simulation(
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


_NOT_SWEPT = frozenset({"data", "out", "resume", "overwrite", "no_progress", "workers", "local_workers", "grid"})


def _grid_values(grid: dict[str, list[str]], actions: dict[str, argparse.Action]) -> dict[str, list[Any]]:
    """The grid's values converted and checked by each ``sim run`` flag's own type and choices."""
    converted: dict[str, list[Any]] = {}
    for name, texts in grid.items():
        action = actions.get(name)
        if action is None or name in _NOT_SWEPT or action.nargs == 0:
            raise UsageError(f"--grid {name}: not a `sim run` flag that can be swept")
        flag = action.option_strings[0]
        values = []
        for text in texts:
            try:
                value = action.type(text) if callable(action.type) else text
            except (argparse.ArgumentTypeError, ValueError) as err:
                raise UsageError(f"--grid {flag}: {err}") from None
            if action.choices is not None and value not in action.choices:
                raise UsageError(f"--grid {flag}: {text!r} is not one of {', '.join(map(str, action.choices))}")
            values.append(value)
        converted[name] = values
    return converted


def _cmd_sweep(args: argparse.Namespace, actions: dict[str, argparse.Action]) -> int:
    import csv

    from fedkeys.run_dir import read_summary
    from fedkeys.sweep import SweepResult, grid_points, last_validation, parse_grid, point_label, rank, sweep_table

    points = grid_points(_grid_values(parse_grid(args.grid), actions))
    for point in points:  # every point's flags are checked before the first run starts
        _check_population(Path(args.data), point.get("clients_per_round", args.clients_per_round))
    out = Path(args.out)
    results = []
    for i, point in enumerate(points, 1):
        label = point_label(point)
        run = out / label
        if (run / "summary.json").is_file() and not args.overwrite:
            print(f"sweep [{i}/{len(points)}] {label}: reusing {run}")
        else:
            print(f"sweep [{i}/{len(points)}] {label}")
            _simulate(
                argparse.Namespace(**(vars(args) | point | {"out": str(run), "resume": args.resume and run.exists()}))
            )
        summary = read_summary(run)
        with (run / "metrics.csv").open(newline="") as f:
            val = last_validation(list(csv.DictReader(f)))
        test = summary["test"]
        results.append(SweepResult(label, val, test["recall_at_1"], test["perplexity"],
                                   int(summary["trained_on"]["tokens"]), float(summary["wall_time_s"])))  # fmt: skip
    table = sweep_table(results)
    (out / "sweep.md").write_text(table + "\n")
    print(table)
    print(f"best by validation recall@1: {rank(results)[0].label} (table in {out / 'sweep.md'})")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from tff_sim.runtime import serve_worker

    return serve_worker(args.port, Path(args.log) if args.log else None)


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    from tff_sim.config import RECIPE_SOURCE, SimConfig

    recipe = SimConfig()  # the defaults live there, with the measurement they come from
    sim = add_group(
        sub,
        "sim",
        help="federated training in TFF simulation",
        example="fedkeys sim run --data data/shakespeare --out runs/fedavg --rounds 50",
    )
    run = add_command(
        sim,
        "run",
        help="simulate federated training rounds",
        description=f"Simulate federated training in TFF. Default recipe: {RECIPE_SOURCE}",
        func=_cmd_run,
        example="fedkeys sim run --data data/shakespeare --out runs/fedavg --rounds 50 "
        "--clients-per-round 10 --central runs/central",
    )
    _add_run_arguments(run, recipe)
    sweep = add_command(
        sim,
        "sweep",
        help="run `sim run` over a grid of flag values and rank the points by validation recall@1",
        description="Run `sim run` once per point of a grid of its flags (each point into OUT/FLAG=VALUE,...; a "
        "point whose summary.json exists is reused, so a sweep can be continued), then rank the points by "
        "their last validation recall@1 (never by the test users') into OUT/sweep.md. Every other flag is "
        "`sim run`'s and applies to all points.",
        example="fedkeys sim sweep --data data/shakespeare --out runs/sweep --rounds 30 "
        "--grid clients-per-round=10,50 --grid local-epochs=1,2",
    )
    _add_run_arguments(sweep, recipe)
    sweep.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="FLAG=V1,V2,...",
        help="a `sim run` flag and the values to try (repeat for a grid: every combination runs)",
    )
    actions = {a.dest: a for a in sweep._actions}
    sweep.set_defaults(func=lambda args: _cmd_sweep(args, actions))

    worker = add_command(
        sim,
        "worker",
        help="run one TFF executor service (worker_binary) for --workers",
        example="fedkeys sim worker --port 8001 --log worker.log",
        func=_cmd_worker,
    )
    worker.add_argument("--port", type=port, required=True, help="TCP port to listen on")
    worker.add_argument("--log", help="write the worker's output to this file (default: the terminal)")


def _add_run_arguments(parser: argparse.ArgumentParser, recipe: Any) -> None:
    """``sim run``'s flags (also ``sim sweep``'s), their defaults from ``recipe`` (a ``SimConfig()``)."""
    from tff_sim.config import AGGREGATORS, ALGORITHMS
    from tff_sim.schedules import DECAYS

    parser.add_argument("--data", required=True, help="a prepared data directory")
    parser.add_argument("--out", required=True, help="run directory (state, metrics.csv, summary.json, checkpoint)")
    parser.add_argument(
        "--algorithm", choices=ALGORITHMS, default=recipe.algorithm, help="federated optimization algorithm"
    )
    parser.add_argument("--rounds", type=positive_int, default=recipe.rounds, help="federated rounds")
    parser.add_argument(
        "--clients-per-round",
        type=positive_int,
        default=recipe.clients_per_round,
        help="clients sampled a round (at most the training users)",
    )
    parser.add_argument(
        "--local-epochs",
        type=positive_int,
        default=recipe.training.local_epochs,
        help="passes over a client's rows a round",
    )
    parser.add_argument(
        "--client-lr", type=positive_float, default=recipe.training.learning_rate, help="client SGD learning rate"
    )
    parser.add_argument(
        "--server-lr",
        type=positive_float,
        help="server learning rate (default: the algorithm's, 1.0 or 0.01 for fedadam/fedyogi)",
    )
    parser.add_argument(
        "--server-epsilon", type=positive_float, default=recipe.server_epsilon, help="fedadam/fedyogi epsilon"
    )
    for side in ("client", "server"):
        schedule = getattr(recipe, f"{side}_lr_schedule")
        parser.add_argument(
            f"--{side}-lr-warmup",
            type=non_negative_int,
            default=schedule.warmup_rounds,
            help=f"{side} lr warmup rounds",
        )
        parser.add_argument(
            f"--{side}-lr-decay", choices=DECAYS, default=schedule.decay, help=f"{side} lr decay over the run"
        )
    parser.add_argument(
        "--lr-final-scale",
        type=positive_float,
        default=recipe.client_lr_schedule.final_scale,
        help="a decayed learning rate ends at this share of its base rate",
    )
    parser.add_argument(
        "--init-from",
        help="start from this run's checkpoint (e.g. `central train --split proxy`: pretraining) instead of "
        "the seeded initialization",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=recipe.batch_size, help="rows a client training step"
    )
    parser.add_argument("--seq-len", type=positive_int, default=20, help="words a training row")
    parser.add_argument("--model", choices=PRESETS, default="small", help="model size preset")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seeds sampling, shuffling, availability and init"
    )
    parser.add_argument(
        "--eval-every", type=positive_int, default=5, help="evaluate on validation users every R rounds"
    )
    parser.add_argument("--checkpoint-every", type=positive_int, default=5, help="save the round state every R rounds")
    parser.add_argument(
        "--max-eval-clients",
        type=positive_int,
        help="evaluate on a fixed sample of this many validation users (default: all)",
    )
    parser.add_argument(
        "--max-rows", type=positive_int, default=recipe.training.max_rows, help="cap on a client's rows a round"
    )
    add_alias(parser, "--max-client-rows", "--max-rows", "max_rows", positive_int)
    parser.add_argument(
        "--availability",
        choices=("always", "diurnal"),
        default="always",
        help="which clients can be sampled: all, or those in their local night",
    )
    parser.add_argument(
        "--aggregator",
        choices=AGGREGATORS,
        default="mean",
        help="float32 mean, b-bit rotated quantization, central DP with adaptive clipping, "
        "or secure aggregation (docs/secagg.md)",
    )
    parser.add_argument(
        "--dp-noise-multiplier",
        type=non_negative_float,
        default=1.0,
        help="noise stddev over the clipping norm, with --aggregator dp",
    )
    parser.add_argument("--workers", help="host:port,host:port of `fedkeys sim worker` processes")
    parser.add_argument("--local-workers", type=positive_int, default=1, help="TFF workers to start on this machine")
    parser.add_argument("--central", help="a central run directory, drawn as a reference")
    parser.add_argument("--ngram", help="an n-gram run directory, drawn as a reference")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last round")
    add_output(parser)
