"""The ``fedkeys`` subcommands of the coordinator area (registered by ``fedkeys.cli``).

``fedkeys serve``: the coordinator under uvicorn (one or several worker processes).
``fedkeys admin ...``: drive a running coordinator's admin API over HTTP (httpx).

The admin key comes from ``--api-key-file`` or the ``FEDKEYS_API_KEY`` environment variable
(never a flag, so it does not show in ``ps``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_DEFAULT_URL = "http://127.0.0.1:8000"


class AdminError(ValueError):
    """The coordinator refused an admin request (shown as one line)."""


# ---------------------------------------------------------------- serve


def _api_key(args: argparse.Namespace) -> str | None:
    if getattr(args, "api_key_file", None):
        return Path(args.api_key_file).read_text(encoding="utf-8").strip()
    return os.environ.get("FEDKEYS_API_KEY")


@contextlib.contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    """A fresh PROMETHEUS_MULTIPROC_DIR for several workers (removed at exit), unless one is set."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="fedkeys-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(directory, ignore_errors=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from coordinator import CoordinatorSettings, Database
    from coordinator.logs import configure_logging

    flags: dict[str, Any] = {"workers": args.workers, "log_json": args.log_json}
    if args.db:
        flags["db"] = args.db
    if args.tick_seconds is not None:
        flags["tick_seconds"] = args.tick_seconds
    key = _api_key(args)
    if key:
        flags["api_key"] = key
    settings = CoordinatorSettings(**flags)  # flags over FEDKEYS_* environment over defaults
    if settings.api_key is None:
        logger.warning("no admin key (FEDKEYS_API_KEY or --api-key-file): the admin API refuses every request")
    db = Database(settings.db)
    db.create_schema()  # once, before the workers start (they would race to create tables)
    db.dispose()
    # Every worker process rebuilds the same settings from the environment.
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "api_key":
            value = settings.api_key.get_secret_value() if settings.api_key else None
        os.environ[f"FEDKEYS_{name.upper()}"] = str(value)
    if args.log_json:  # this process (one worker runs in it); spawned workers configure themselves
        logging.getLogger().handlers = []
        configure_logging(json_lines=True, level=settings.log_level)
    log_config = None if args.log_json else uvicorn.config.LOGGING_CONFIG
    logger.info(
        "coordinator on http://%s:%d with %d worker(s), db %s", args.host, args.port, args.workers, _redact(settings.db)
    )
    with _multiprocess_metrics(settings.workers):
        uvicorn.run(
            "coordinator.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=settings.workers,
            log_config=log_config,
            access_log=args.access_log,
            timeout_graceful_shutdown=5,
        )
    return 0


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


# ---------------------------------------------------------------- admin


class _AdminClient:
    def __init__(self, url: str, key: str | None, timeout: float = 120.0) -> None:
        import httpx

        if not key:
            raise AdminError("the admin key is needed: set FEDKEYS_API_KEY or pass --api-key-file")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request on the terminal
        self._http = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, f"/v1/admin{path}", **kwargs)
        except httpx.HTTPError as err:
            raise AdminError(f"cannot reach the coordinator: {err}") from err
        if response.status_code >= 400:
            try:
                detail = response.json()["detail"]
                message = f"{detail['reason']}: {detail['message']}" if isinstance(detail, dict) else str(detail)
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise AdminError(f"{method} {path} -> {response.status_code} {message}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def put_blob(self, data: bytes) -> str:
        info = self.request("PUT", "/blobs", content=data, headers={"Content-Type": "application/octet-stream"})
        return str(info["sha256"])


def _load_checkpoint_weights(path: Path) -> list[Any]:
    """Weights from a run dir, a checkpoint dir, a weights.npz (``model.checkpoint`` layout) or a weights blob."""
    import numpy as np

    from wire.update import decode_weights

    for candidate in (path / "checkpoint" / "weights.npz", path / "weights.npz", path):
        if candidate.is_file():
            path = candidate
            break
    else:
        raise FileNotFoundError(f"{path}: no checkpoint (a run dir, checkpoint dir, weights.npz or weights blob)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            count = len([k for k in data.files if k.startswith("w") and k[1:].isdigit()])
            return [np.asarray(data[f"w{i:03d}"], dtype=np.float32) for i in range(count)]
    return decode_weights(path.read_bytes())


def _cmd_create_task(args: argparse.Namespace) -> int:
    from wire.manifest import MANIFEST_FILE, load_manifest
    from wire.protocol import task_training_fields
    from wire.update import encode_weights

    client = _AdminClient(args.url, _api_key(args))
    plan = Path(args.plan)
    manifest = load_manifest(plan, verify=True)  # every file's sha256 checked before anything is sent
    weights = _load_checkpoint_weights(Path(args.checkpoint))
    manifest.check_tensors(weights, f"checkpoint {args.checkpoint}")
    for name in sorted(manifest.files):
        client.put_blob((plan / name).read_bytes())
    plan_sha = client.put_blob((plan / MANIFEST_FILE).read_bytes())
    ckpt_sha = client.put_blob(encode_weights(weights))
    chosen = {"learning_rate": args.learning_rate} if args.learning_rate is not None else {}
    training = manifest.client_training(
        local_epochs=args.local_epochs, max_rows=args.max_rows, data_seed=args.seed, codec=args.codec,
        clip_norm=args.client_clip_norm, **chosen,
    )  # fmt: skip
    body: dict[str, Any] = {
        "population": args.population,
        "task": args.task,
        "plan_sha256": plan_sha,
        "checkpoint_sha256": ckpt_sha,
        "goal_count": args.goal,
        "over_selection": args.over_selection,
        "min_reports": args.min_reports,
        "selection_seconds": args.selection_seconds,
        "report_seconds": args.report_seconds,
        "norm_bound": args.norm_bound,
        "norm_policy": args.norm_policy,
        "server_optimizer": args.server_optimizer,
        "server_lr": args.server_lr,
        "dp_noise_multiplier": args.dp_noise_multiplier,
        "max_rounds": args.max_rounds,
        **task_training_fields(training),
        "secure_aggregation": args.secure_aggregation,
        "secagg_threshold": args.secagg_threshold,
        "secagg_bits": args.secagg_bits,
        "secagg_clip": args.secagg_clip,
    }
    status = client.request("POST", "/tasks", json=body)
    print(f"created population {status['population']} (task {status['task']}) from {plan}")
    _print_status(status)
    return 0


def _print_status(status: dict[str, Any]) -> None:
    state = "finished" if status["finished"] else "paused" if status["paused"] else "active"
    print(
        f"  {status['population']:<16} {state:<8} model v{status['model_version']}  "
        f"committed {status['rounds_committed']}  abandoned {status['rounds_abandoned']}"
    )
    current = status.get("current")
    if current:
        print(
            f"  round {current['round']} {current['state']}: assigned {current['assigned']}/{current['target']}, "
            f"received {current['received']}/{current['goal']}"
        )


def _cmd_status(args: argparse.Namespace) -> int:
    client = _AdminClient(args.url, _api_key(args))
    if args.json:
        path = f"/populations/{args.population}" if args.population else "/populations"
        print(json.dumps(client.request("GET", path), indent=2))
        return 0
    statuses = (
        [client.request("GET", f"/populations/{args.population}")]
        if args.population
        else client.request("GET", "/populations")
    )
    if not statuses:
        print("no populations")
    for status in statuses:
        _print_status(status)
    return 0


def _cmd_pause(args: argparse.Namespace) -> int:
    client = _AdminClient(args.url, _api_key(args))
    _print_status(client.request("POST", f"/populations/{args.population}/{args.action}"))
    return 0


def _cmd_rounds(args: argparse.Namespace) -> int:
    client = _AdminClient(args.url, _api_key(args))
    rounds = client.request("GET", f"/populations/{args.population}/rounds", params={"limit": args.limit})
    if args.json:
        print(json.dumps(rounds, indent=2))
        return 0
    print(f"{'round':>5} {'state':<10} {'version':>8} {'assigned':>9} {'received':>9} {'aborted':>7}  metrics")
    for r in rounds:
        version = f"{r['model_version']}" + (
            f"->{r['committed_version']}" if r["committed_version"] is not None else ""
        )
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(r["metrics"].items()))
        print(
            f"{r['round']:>5} {r['state']:<10} {version:>8} {r['assigned']:>4}/{r['target']:<4} "
            f"{r['received']:>4}/{r['goal']:<4} {r['aborted']:>7}  {metrics}"
        )
    return 0


def _cmd_download_model(args: argparse.Namespace) -> int:
    import numpy as np

    from wire.update import decode_weights

    client = _AdminClient(args.url, _api_key(args))
    version = args.version
    if version is None:
        version = client.request("GET", f"/populations/{args.population}")["model_version"]
    blob = client.request("GET", f"/populations/{args.population}/models/{version}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":  # the model.checkpoint weights layout: w000, w001, ... in weight order
        weights = decode_weights(blob)
        np.savez(out, **{f"w{i:03d}": w for i, w in enumerate(weights)})
    else:
        out.write_bytes(blob)
    print(f"model version {version} of {args.population} -> {out}")
    return 0


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    serve = sub.add_parser("serve", help="run the federated learning coordinator (FastAPI under uvicorn)")
    serve.add_argument("--db", help="sqlite:///FILE (default) or postgresql://user@host/db (env FEDKEYS_DB)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (use PostgreSQL for >1)")
    serve.add_argument("--tick-seconds", type=float, help="how often deadlines are checked (default 1)")
    serve.add_argument("--api-key-file", help="file holding the admin key (else env FEDKEYS_API_KEY)")
    serve.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=_cmd_serve)

    admin = sub.add_parser("admin", help="drive a running coordinator's admin API")
    admin_sub = admin.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=os.environ.get("FEDKEYS_URL", _DEFAULT_URL), help="coordinator base URL")
        p.add_argument("--api-key-file", help="file holding the admin key (else env FEDKEYS_API_KEY)")

    create = admin_sub.add_parser("create-task", help="create a population's task from an exported plan")
    common(create)
    create.add_argument("--population", required=True)
    create.add_argument("--task", default="train")
    create.add_argument("--plan", required=True, help="an exported plan directory (manifest.json, train.tflite, ...)")
    create.add_argument("--checkpoint", required=True, help="initial weights: a run dir, checkpoint dir or .npz")
    create.add_argument("--goal", type=int, default=10, help="valid updates a round needs")
    create.add_argument("--over-selection", type=float, default=1.3)
    create.add_argument("--min-reports", type=int, help="commit at the deadline with at least this many")
    create.add_argument("--selection-seconds", type=float, default=60.0)
    create.add_argument("--report-seconds", type=float, default=600.0)
    create.add_argument("--codec", choices=("float32", "quant8", "quant4", "quant2"), default="quant8")
    create.add_argument("--client-clip-norm", type=float, help="devices clip their delta to this L2 norm")
    create.add_argument("--norm-bound", type=float, help="server-side L2 bound of an update")
    create.add_argument("--norm-policy", choices=("clip", "reject"), default="clip")
    create.add_argument("--server-optimizer", choices=("fedavg", "fedadam"), default="fedavg")
    create.add_argument("--server-lr", type=float, default=1.0)
    create.add_argument("--dp-noise-multiplier", type=float, default=0.0)
    create.add_argument("--local-epochs", type=int, default=1)
    create.add_argument("--learning-rate", type=float, help="client SGD rate (default: the plan's)")
    create.add_argument("--max-rows", type=int, default=256)
    create.add_argument("--max-rounds", type=int)
    create.add_argument("--seed", type=int, default=0)
    create.add_argument(
        "--secure-aggregation", action="store_true", help="devices upload masked inputs only (secagg); uniform mean"
    )
    create.add_argument("--secagg-threshold", type=int, help="fewest devices whose sum may be revealed")
    create.add_argument("--secagg-bits", type=int, default=16, help="bits a coordinate in a secure round")
    create.add_argument("--secagg-clip", type=float, default=1.0, help="L2 clip of a secure round's deltas")
    create.set_defaults(func=_cmd_create_task)

    status = admin_sub.add_parser("status", help="populations, model versions and the open round")
    common(status)
    status.add_argument("--population")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)

    for action in ("pause", "resume"):
        p = admin_sub.add_parser(action, help=f"{action} a population's rounds")
        common(p)
        p.add_argument("--population", required=True)
        p.set_defaults(func=_cmd_pause)

    rounds = admin_sub.add_parser("rounds", help="round history with participation and metrics")
    common(rounds)
    rounds.add_argument("--population", required=True)
    rounds.add_argument("--limit", type=int, default=20)
    rounds.add_argument("--json", action="store_true")
    rounds.set_defaults(func=_cmd_rounds)

    download = admin_sub.add_parser("download-model", help="a committed model's weights (.npz or the raw blob)")
    common(download)
    download.add_argument("--population", required=True)
    download.add_argument("--version", type=int, help="default: the latest")
    download.add_argument("--out", required=True, help="FILE.npz (w000.. arrays) or any other name (raw blob)")
    download.set_defaults(func=_cmd_download_model)


def domain_errors() -> tuple[type[BaseException], ...]:
    """This area's errors that mean bad input (shown as one line, exit 2)."""
    from wire.update import WireError

    return (AdminError, WireError)
