"""``fedkeys serve``: the coordinator under uvicorn (one or several worker processes).

Everything that can be checked before the server starts is: the settings
(``CoordinatorSettings``), the port (free, before the database file is
created) and the database (the tables are created once here, so a wrong path
or an unknown PostgreSQL role is one ``fedkeys: error:`` line, not a
traceback from every worker).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

from fedkeys._cli_common import UsageError, add_command, api_key, build, port, positive_float, positive_int

logger = logging.getLogger(__name__)


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


def _check_port(host: str, port_number: int) -> None:
    """Refuse a port another process listens on, before the database is touched or uvicorn starts."""
    if port_number == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is fine
        try:
            probe.bind((host, port_number))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UsageError(f"--port {port_number}: {host}:{port_number} is already in use") from None
            raise UsageError(f"--host {host} --port {port_number}: cannot listen there ({err.strerror})") from None


def _create_schema(url: str, *, shown: str) -> None:
    """The tables, once, before the workers start (they would race to create them); one line if the db refuses."""
    import sqlalchemy.exc

    from coordinator import Database

    try:
        db = Database(url)
        try:
            db.create_schema()
        finally:
            db.dispose()
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise UsageError(f"--db {_redact(shown)}: cannot open the database: {reason}") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    from coordinator import CoordinatorSettings

    flags: dict[str, Any] = {"workers": args.workers, "log_json": args.log_json}
    if args.db:
        flags["db"] = args.db
    if args.tick_seconds is not None:
        flags["tick_seconds"] = args.tick_seconds
    for name in ("loop", "http"):
        if getattr(args, name) is not None:
            flags[name] = getattr(args, name)
    key = api_key(args)
    if key:
        flags["api_key"] = key
    settings = build(CoordinatorSettings, **flags)  # flags over FEDKEYS_* environment over defaults
    _check_port(args.host, args.port)
    _create_schema(settings.db, shown=args.db or settings.db)
    if settings.api_key is None:
        logger.warning("no admin key (FEDKEYS_API_KEY or --api-key-file): the admin API refuses every request")
    _run_uvicorn(args, settings)
    return 0


def _run_uvicorn(args: argparse.Namespace, settings: Any) -> None:
    import uvicorn

    from coordinator.logs import configure_logging

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
            loop=settings.loop,
            http=settings.http,
            log_config=log_config,
            access_log=args.access_log,
            timeout_graceful_shutdown=5,
        )


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def register(sub: Any) -> None:
    """Add this area's subcommands to the top-level subparsers ``sub``."""
    serve = add_command(
        sub,
        "serve",
        help="run the federated learning coordinator (FastAPI under uvicorn)",
        func=_cmd_serve,
        example="fedkeys serve --db sqlite:///coordinator.db --api-key-file key",
    )
    serve.add_argument(
        "--db",
        help="sqlite:///FILE or postgresql://user@host/db "
        "(default: env FEDKEYS_DB, else sqlite:///fedkeys-coordinator.db)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=port, default=8000, help="TCP port to listen on")
    serve.add_argument(
        "--workers", type=positive_int, default=1, help="uvicorn worker processes (use PostgreSQL for more than 1)"
    )
    serve.add_argument("--loop", choices=("uvloop", "asyncio", "auto"), help="event loop (default uvloop)")
    serve.add_argument("--http", choices=("httptools", "h11", "auto"), help="HTTP/1.1 parser (default httptools)")
    serve.add_argument("--tick-seconds", type=positive_float, help="how often deadlines are checked (default 1)")
    serve.add_argument("--api-key-file", metavar="FILE", help="file holding the admin key (else env FEDKEYS_API_KEY)")
    serve.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    serve.add_argument("--access-log", action="store_true", help="log every request")
