"""``fedkeys admin ...``: drive a running coordinator's admin API (``fedkeys.admin_client``).

Every action takes ``--coordinator URL`` and the admin key from ``--api-key-file``
or the ``FEDKEYS_API_KEY`` environment variable (never a flag, so it does not
show in ``ps``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fedkeys._cli_common import (
    UsageError,
    add_alias,
    add_command,
    add_coordinator,
    add_group,
    api_key,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def _client(args: argparse.Namespace) -> Any:
    from fedkeys.admin_client import AdminClient

    return AdminClient(args.coordinator, api_key(args))


def _load_checkpoint_weights(path: Path) -> list[Any]:
    """Weights from a run dir, a checkpoint dir, a weights.npz (``model.checkpoint`` layout) or a weights blob."""
    import numpy as np

    from wire.update import decode_weights

    for candidate in (path / "checkpoint" / "weights.npz", path / "weights.npz", path):
        if candidate.is_file():
            path = candidate
            break
    else:
        raise UsageError(f"--checkpoint {path}: no checkpoint (a run dir, checkpoint dir, weights.npz or weights blob)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            count = len([k for k in data.files if k.startswith("w") and k[1:].isdigit()])
            return [np.asarray(data[f"w{i:03d}"], dtype=np.float32) for i in range(count)]
    return decode_weights(path.read_bytes())


def _task_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``TaskCreate`` settings the flags name (the learning rate defaults to the plan's)."""
    names = (
        "population",
        "task",
        "over_selection",
        "min_reports",
        "selection_seconds",
        "report_seconds",
        "codec",
        "client_clip_norm",
        "norm_bound",
        "norm_policy",
        "server_optimizer",
        "server_lr",
        "dp_noise_multiplier",
        "local_epochs",
        "max_rows",
        "max_rounds",
        "seed",
        "secure_aggregation",
        "secagg_threshold",
        "secagg_bits",
        "secagg_clip",
    )
    fields = {name: getattr(args, name) for name in names}
    fields["goal_count"] = args.goal
    return fields


def _cmd_create_task(args: argparse.Namespace) -> int:
    from fedkeys.admin_client import check_task_settings
    from wire.manifest import load_manifest
    from wire.protocol import task_training_fields

    fields = _task_fields(args)
    chosen = {"learning_rate": args.client_lr} if args.client_lr is not None else {}
    check_task_settings(fields | chosen)  # before the plan (megabytes) is read or uploaded
    plan = Path(args.plan)
    manifest = load_manifest(plan, verify=True)  # every file's sha256 checked before anything is sent
    training = manifest.client_training(  # the plan's learning rate unless --client-lr names one
        local_epochs=args.local_epochs, max_rows=args.max_rows, data_seed=args.seed, codec=args.codec,
        clip_norm=args.client_clip_norm, **chosen,
    )  # fmt: skip
    fields.update(task_training_fields(training))
    weights = _load_checkpoint_weights(Path(args.checkpoint))
    with _client(args) as client:
        status = client.create_task(plan, weights, **fields)
    print(f"created population {status.population} (task {status.task}) from {plan}")
    _print_status(status)
    return 0


def _print_status(status: Any) -> None:
    state = "finished" if status.finished else "paused" if status.paused else "active"
    print(
        f"  {status.population:<16} {state:<8} model v{status.model_version}  "
        f"committed {status.rounds_committed}  abandoned {status.rounds_abandoned}"
    )
    current = status.current
    if current:
        print(
            f"  round {current.round} {current.state}: assigned {current.assigned}/{current.target}, "
            f"received {current.received}/{current.goal}"
        )


def _cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        statuses = [client.status(args.population)] if args.population else client.populations()
    if args.json:
        shown = [s.model_dump(mode="json") for s in statuses]
        print(json.dumps(shown[0] if args.population else shown, indent=2))
        return 0
    if not statuses:
        print("no populations")
    for status in statuses:
        _print_status(status)
    return 0


def _cmd_pause(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_status(client.set_paused(args.population, args.action == "pause"))
    return 0


def _cmd_rounds(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rounds = client.rounds(args.population, limit=args.limit)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rounds], indent=2))
        return 0
    print(f"{'round':>5} {'state':<10} {'version':>8} {'assigned':>9} {'received':>9} {'aborted':>7}  metrics")
    for r in rounds:
        version = f"{r.model_version}" + (f"->{r.committed_version}" if r.committed_version is not None else "")
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items()))
        print(
            f"{r.round:>5} {r.state:<10} {version:>8} {r.assigned:>4}/{r.target:<4} "
            f"{r.received:>4}/{r.goal:<4} {r.aborted:>7}  {metrics}"
        )
    return 0


def _cmd_download_model(args: argparse.Namespace) -> int:
    out = Path(args.out)
    with _client(args) as client:
        if out.suffix == ".npz":  # the model.checkpoint weights layout: w000, w001, ... in weight order
            import numpy as np

            version = args.version if args.version is not None else client.status(args.population).model_version
            out.parent.mkdir(parents=True, exist_ok=True)
            np.savez(out, **{f"w{i:03d}": w for i, w in enumerate(client.model(args.population, version))})
        else:
            from fedkeys.deployed_run import download_run

            summary = download_run(client, args.population, out, version=args.version, overwrite=args.overwrite)
            version = summary["source"]["model_version"]
    print(f"model version {version} of {args.population} -> {out}")
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    admin = add_group(
        sub,
        "admin",
        help="drive a running coordinator's admin API",
        example="FEDKEYS_API_KEY=$(cat key) fedkeys admin status --coordinator http://127.0.0.1:8000",
    )
    _register_create_task(admin)

    status = _admin_command(
        admin,
        "status",
        "populations, model versions and the open round",
        _cmd_status,
        "fedkeys admin status --population keyboard --json",
    )
    status.add_argument("--population", help="one population (default: all)")
    status.add_argument("--json", action="store_true", help="print the TaskStatus records as JSON")

    for action in ("pause", "resume"):
        p = _admin_command(
            admin,
            action,
            f"{action} a population's rounds",
            _cmd_pause,
            f"fedkeys admin {action} --population keyboard",
        )
        p.add_argument("--population", required=True, help="the population to " + action)

    rounds = _admin_command(
        admin,
        "rounds",
        "round history with participation and metrics",
        _cmd_rounds,
        "fedkeys admin rounds --population keyboard --limit 5",
    )
    rounds.add_argument("--population", required=True, help="the population whose rounds to list")
    rounds.add_argument("--limit", type=positive_int, default=20, help="the most recent rounds to list")
    rounds.add_argument("--json", action="store_true", help="print the RoundInfo records as JSON")

    download = _admin_command(
        admin,
        "download-model",
        "a committed model as a run folder (for suggest and export tflite) or .npz",
        _cmd_download_model,
        "fedkeys admin download-model --population keyboard --out runs/deployed",
    )
    download.add_argument("--population", required=True, help="the population whose model to download")
    download.add_argument("--version", type=non_negative_int, help="model version (default: the latest)")
    download.add_argument(
        "--out",
        required=True,
        help="a run folder to write (checkpoint, tokenizer, summary.json), or FILE.npz for the "
        "weights only (w000.. arrays)",
    )
    download.add_argument("--overwrite", action="store_true", help="replace an existing run folder")


def _admin_command(admin: Any, name: str, text: str, func: Any, example: str) -> argparse.ArgumentParser:
    parser = add_command(admin, name, help=text, func=func, example=f"FEDKEYS_API_KEY=$(cat key) {example}")
    add_coordinator(parser, key_help="else env FEDKEYS_API_KEY")
    return parser


def _register_create_task(admin: Any) -> None:
    create = _admin_command(
        admin,
        "create-task",
        "create a population's task from an exported plan",
        _cmd_create_task,
        "fedkeys admin create-task --population keyboard --plan runs/plan --checkpoint runs/central --goal 10",
    )
    create.add_argument("--population", required=True, help="name of the population (devices check in to it)")
    create.add_argument("--task", default="train", help="name of the task")
    create.add_argument("--plan", required=True, help="an exported plan directory (manifest.json, train.tflite, ...)")
    create.add_argument("--checkpoint", required=True, help="initial weights: a run dir, checkpoint dir or .npz")
    create.add_argument("--goal", type=positive_int, default=10, help="valid updates a round needs")
    create.add_argument(
        "--over-selection", type=positive_float, default=1.3, help="devices assigned a round per update needed"
    )
    create.add_argument("--min-reports", type=positive_int, help="commit at the deadline with at least this many")
    create.add_argument(
        "--selection-seconds", type=positive_float, default=60.0, help="how long a round waits for its devices"
    )
    create.add_argument(
        "--report-seconds", type=positive_float, default=600.0, help="a round's deadline for uploads, from its start"
    )
    create.add_argument(
        "--codec",
        choices=("float32", "quant8", "quant4", "quant2"),
        default="quant8",
        help="how devices encode their update",
    )
    create.add_argument("--client-clip-norm", type=positive_float, help="devices clip their delta to this L2 norm")
    create.add_argument("--norm-bound", type=positive_float, help="server-side L2 bound of an update")
    create.add_argument(
        "--norm-policy",
        choices=("clip", "reject"),
        default="clip",
        help="what the server does with an update over --norm-bound",
    )
    create.add_argument(
        "--server-optimizer",
        choices=("fedavg", "fedadam"),
        default="fedavg",
        help="how the server applies the mean update",
    )
    create.add_argument("--server-lr", type=positive_float, default=1.0, help="server learning rate")
    create.add_argument(
        "--dp-noise-multiplier",
        type=non_negative_float,
        default=0.0,
        help="central DP noise over --norm-bound (0: none)",
    )
    create.add_argument("--local-epochs", type=positive_int, default=1, help="passes over a device's rows a round")
    create.add_argument("--client-lr", type=positive_float, help="client SGD learning rate (default: the plan's)")
    add_alias(create, "--learning-rate", "--client-lr", "client_lr", positive_float)
    create.add_argument("--max-rows", type=positive_int, default=256, help="cap on a device's rows a round")
    create.add_argument("--max-rounds", type=positive_int, help="stop after this many committed rounds")
    create.add_argument("--seed", type=non_negative_int, default=0, help="seeds the devices' rotation and row order")
    create.add_argument(
        "--secure-aggregation", action="store_true", help="devices upload masked inputs only (secagg); uniform mean"
    )
    create.add_argument("--secagg-threshold", type=positive_int, help="fewest devices whose sum may be revealed")
    create.add_argument("--secagg-bits", type=positive_int, default=16, help="bits a coordinate in a secure round")
    create.add_argument("--secagg-clip", type=positive_float, default=1.0, help="L2 clip of a secure round's deltas")
