"""The one client of the coordinator's admin API (``/v1/admin/...``), typed by ``wire.protocol``.

``fedkeys admin ...``, ``fedkeys devices emulate`` (rounds committed), the demo
and the parity check all drive a coordinator through :class:`AdminClient`.
Requests and answers are the ``wire.protocol`` models (``TaskCreate``,
``TaskStatus``, ``RoundInfo``, ``BlobInfo``), so a field renamed on the server
breaks here, loudly, instead of in three hand-written dict readers.

Every failure is an :class:`AdminError` naming the URL tried and, for a
refusal, the coordinator's reason: the key is missing or wrong, the
coordinator is not running, a task setting is out of range (checked here,
before the plan is uploaded).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from fedkeys_errors import FedkeysError
from wire.manifest import MANIFEST_FILE, PlanManifest, load_manifest
from wire.protocol import API_KEY_HEADER, API_PREFIX, BlobInfo, ModelInfo, RoundInfo, TaskCreate, TaskStatus
from wire.update import decode_weights, encode_weights

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)
_PLACEHOLDER_SHA = "0" * 64  # lets TaskCreate check the settings before anything is uploaded
_STATUS_TIMEOUT_S = 120.0


class AdminError(FedkeysError):
    """An admin request that failed: no key, the coordinator out of reach, or a refusal (its reason)."""


def check_task_settings(fields: dict[str, Any]) -> None:
    """Raise :class:`AdminError` naming the first bad ``TaskCreate`` setting, before any upload."""
    try:
        TaskCreate(plan_sha256=_PLACEHOLDER_SHA, checkpoint_sha256=_PLACEHOLDER_SHA, **fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        if not where:  # a rule over several settings (TaskCreate's model validator)
            raise AdminError(f"task settings: {first.get('msg')}") from None
        raise AdminError(f"task setting {where}: {first.get('msg')} (got {first.get('input')!r})") from None


class AdminClient:
    """The admin API of the coordinator at ``url``, authenticated by ``api_key``."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float = _STATUS_TIMEOUT_S) -> None:
        if not api_key:
            raise AdminError("the admin key is needed: set FEDKEYS_API_KEY or pass --api-key-file")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request on the terminal
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers={API_KEY_HEADER: api_key}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.url}{path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise AdminError(f"cannot reach the coordinator at {self.url} ({method} {url}: {err})") from err
        if response.status_code >= 400:
            raise AdminError(f"{method} {url} -> {response.status_code} {_refusal(response)}")
        return response

    def _admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._request(method, f"{API_PREFIX}/admin{path}", **kwargs)

    def _typed(self, model: type[_M], method: str, path: str, **kwargs: Any) -> _M:
        response = self._admin(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as err:
            raise AdminError(f"{method} {self.url}{path}: the answer is not a {model.__name__} ({err})") from err

    # ------------------------------------------------------------ calls

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` on the coordinator; its sha256."""
        headers = {"Content-Type": "application/octet-stream"}
        return self._typed(BlobInfo, "PUT", "/blobs", content=data, headers=headers).sha256

    def blob(self, sha256: str) -> bytes:
        """A stored blob (the devices' ``GET /v1/blobs/{sha256}``), checked against its hash."""
        data = self._request("GET", f"{API_PREFIX}/blobs/{sha256}").content
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise AdminError(f"{self.url}: blob {sha256} arrived with sha256 {actual}")
        return data

    def create_task(self, plan_dir: Path, weights: Sequence[np.ndarray], **fields: Any) -> TaskStatus:
        """Check the settings, upload the plan's files, manifest and initial weights, create the task."""
        check_task_settings(fields)
        manifest = load_manifest(plan_dir, verify=True)  # every file's sha256 checked before anything is sent
        manifest.check_tensors(list(weights), "initial weights")
        for name in sorted(manifest.files):
            self.put_blob((plan_dir / name).read_bytes())
        body = TaskCreate(
            plan_sha256=self.put_blob((plan_dir / MANIFEST_FILE).read_bytes()),
            checkpoint_sha256=self.put_blob(encode_weights(list(weights))),
            **fields,
        )
        content = body.model_dump_json(exclude_unset=True)
        return self._typed(TaskStatus, "POST", "/tasks", content=content, headers={"Content-Type": "application/json"})

    def populations(self) -> list[TaskStatus]:
        response = self._admin("GET", "/populations")
        return TypeAdapter(list[TaskStatus]).validate_json(response.content)

    def status(self, population: str) -> TaskStatus:
        return self._typed(TaskStatus, "GET", f"/populations/{population}")

    def set_paused(self, population: str, paused: bool) -> TaskStatus:
        return self._typed(TaskStatus, "POST", f"/populations/{population}/{'pause' if paused else 'resume'}")

    def rounds(self, population: str, limit: int = 1000) -> list[RoundInfo]:
        response = self._admin("GET", f"/populations/{population}/rounds", params={"limit": limit})
        return TypeAdapter(list[RoundInfo]).validate_json(response.content)

    def models(self, population: str) -> list[ModelInfo]:
        """Every committed model version of the task, oldest first."""
        response = self._admin("GET", f"/populations/{population}/models")
        return TypeAdapter(list[ModelInfo]).validate_json(response.content)

    def model_blob(self, population: str, version: int) -> bytes:
        """A committed model version's ``wire.update`` weights blob."""
        return self._admin("GET", f"/populations/{population}/models/{version}").content

    def model(self, population: str, version: int) -> list[np.ndarray]:
        return decode_weights(self.model_blob(population, version))

    def plan_manifest(self, status: TaskStatus) -> PlanManifest:
        """The manifest of the task's plan (fetched by its sha256)."""
        return PlanManifest.from_json(self.blob(status.config.plan_sha256))

    def wait_committed(self, population: str, rounds: int, timeout: float) -> TaskStatus:
        """Poll the task's status until ``rounds`` rounds committed (AdminError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(population)
            if status.rounds_committed >= rounds:
                return status
            if time.monotonic() > deadline:
                raise AdminError(
                    f"{population}: {status.rounds_committed} of {rounds} rounds committed after {timeout:.0f} s"
                )
            time.sleep(0.2)


def _refusal(response: httpx.Response) -> str:
    """The coordinator's ``reason: message`` of a refusal, or the start of its body."""
    try:
        detail = response.json()["detail"]
        return f"{detail['reason']}: {detail['message']}" if isinstance(detail, dict) else str(detail)
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
