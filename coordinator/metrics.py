"""Prometheus metrics of one coordinator app (``/metrics``).

Created per app, never at import. With several uvicorn workers each process
counts its own requests; set ``PROMETHEUS_MULTIPROC_DIR`` (``fedkeys serve
--workers N`` does) and ``/metrics`` then sums every worker's counters through
``prometheus_client.multiprocess`` (Prometheus' documented multi-process mode).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

_ROUND_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
HANDLER_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multi-process mode values go to files and are collected at scrape time; register nowhere.
        self.registry = CollectorRegistry()
        reg = None if self.multiprocess else self.registry
        self.checkins = Counter(
            "fedkeys_checkins", "Device check-ins by outcome and reason", ["outcome", "reason"], registry=reg
        )
        self.uploads = Counter("fedkeys_uploads", "Uploads by result", ["result"], registry=reg)
        self.rejections = Counter("fedkeys_update_rejections", "Refused uploads by reason", ["reason"], registry=reg)
        self.upload_bytes = Counter("fedkeys_upload_bytes", "Bytes of accepted updates", registry=reg)
        self.reports = Counter("fedkeys_reports", "Device reports by status", ["status"], registry=reg)
        self.aborts = Counter("fedkeys_aborts", "Sessions aborted by devices", registry=reg)
        self.rounds = Counter("fedkeys_rounds", "Rounds closed by final state", ["state"], registry=reg)
        self.handler_seconds = Histogram(
            "fedkeys_handler_seconds",
            "Time in the coordinator's handlers (database included, HTTP stack excluded)",
            ["operation"],
            buckets=HANDLER_BUCKETS,
            registry=reg,
        )
        self.round_seconds = Histogram(
            "fedkeys_round_duration_seconds",
            "Round duration by final state",
            ["state"],
            buckets=_ROUND_BUCKETS,
            registry=reg,
        )

    def render(self) -> bytes:
        """The text exposition of all counters (every worker's in multi-process mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
