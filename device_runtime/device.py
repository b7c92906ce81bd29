"""One phone: decide eligibility, check in, train on the plan, upload, report, and reschedule.

The device side of Bonawitz et al. 2019 (§2-3): the device keeps its data and
decides on its own whether it may train; it checks in with the coordinator and
either gets an assignment or is told when to come back; an assigned device
downloads the plan (``manifest.json`` + ``train.tflite``) and the checkpoint by
content hash, verifies them, trains locally through LiteRT (FedAvg's client
update, McMahan et al. 2017), encodes the delta with ``wire.update`` and uploads
it with the session's single-use token, then reports (in a secure round it
runs ``secure_session``'s four phases instead and uploads only a masked
vector, Bonawitz et al. 2017). Whatever fails, the
device never crashes: a plan it cannot run or bytes that do not match their
hash are refused and the session aborted with the reason; an interrupted
training is discarded and aborted; coordinator errors back off (``scheduler``).

:meth:`Device.step` does one attempt at the current (device clock) time and
returns what happened and when to try next; the emulator calls it in a loop.
Its schedule is in the device's own seconds; what the coordinator says (retry
windows, deadlines, a credential's expiry) is in the coordinator's wall time
and goes through the device's clock (``device_runtime.timebase``), so an
emulated phone honours pace steering as a real one does.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from device_runtime import event_log as ev
from device_runtime._sqlite import DeviceDatabase
from device_runtime.blob_cache import BlobCache, HashMismatchError
from device_runtime.client import CoordinatorClient, CoordinatorError
from device_runtime.credential_store import CredentialStore, StoredCredential
from device_runtime.eligibility import (
    TOO_SOON,
    DeviceConditions,
    EligibilityPolicy,
    conditions_block,
    ineligibility,
)
from device_runtime.example_store import ExampleStore, StoredExample
from device_runtime.litert_model import LiteRTModelError, LiteRTTrainer
from device_runtime.rows import client_rows
from device_runtime.scheduler import (
    RetryPolicy,
    SchedulerState,
    StateStore,
    ineligible_delay,
    jittered,
    permanent_delay,
    retry_window_delay,
    transient_delay,
)
from device_runtime.secure_session import HttpSecAggTransport, run_secure_session, secure_assignment
from device_runtime.timebase import DeviceClock, WallClock
from device_runtime.training import LocalResult, Trainer, TrainingInterrupted, train_locally
from wire.codec import CODECS
from wire.manifest import TRAIN_FILE, ManifestError, PlanManifest
from wire.protocol import (
    API_PREFIX,
    CREDENTIAL_REASONS,
    Assignment,
    CheckinRequest,
    EnrollRequest,
    ReportRequest,
)
from wire.update import WireError, decode_weights, encode_update, raw_nbytes

logger = logging.getLogger(__name__)

DATABASE_FILE = "device.sqlite"
CLIENT_VERSION = "fedkeys-device/1"
RUNTIME = "litert"
_JITTER_SALT = 0x5C4ED1
_SECAGG_SALT = 0x5EC0

TrainerFactory = Callable[[bytes, PlanManifest], Trainer]
BatchHook = Callable[[int, int], str | None]  # (batch index, batches in all) -> reason to stop, or None
_WALL_CLOCK = WallClock()


def litert_trainer(train_tflite: bytes, manifest: PlanManifest) -> Trainer:
    """The real trainer: a LiteRT interpreter over ``train.tflite``, checked against the manifest."""
    return LiteRTTrainer(train_tflite, manifest, num_threads=1)


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """One device's settings; defaults here, nowhere else."""

    population: str
    client: int  # this device's index in the row order (``client_rows``); the emulator uses the user's index
    directory: Path  # device.sqlite lives here (unless the device is given a shared database)
    cache_directory: Path | None = None  # content-addressed downloads; default ``directory / "cache"``
    retention_seconds: float = 90 * 86400.0
    eligibility: EligibilityPolicy = dataclasses.field(default_factory=EligibilityPolicy)
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    codecs: tuple[str, ...] = CODECS
    tokenizer_sha256: str | None = None  # if set, refuse plans trained with another tokenizer
    enroll_key: str | None = None  # X-Enroll-Key, if the coordinator guards enrollment with one
    seed: int = 0  # jitter of this device's delays

    def __post_init__(self) -> None:
        if self.client < 0:
            raise ValueError(f"client must be non-negative, got {self.client}")
        unknown = [c for c in self.codecs if c not in CODECS]
        if unknown or not self.codecs:
            raise ValueError(f"codecs must be a non-empty subset of {CODECS}, got {self.codecs}")


class StepOutcome(NamedTuple):
    """What one step did (``kind`` is an event-log kind or ``ineligible``) and when to step next."""

    kind: str
    detail: str
    next_checkin: float


class _Refused(Exception):
    """The device will not run this assignment; ``reason`` goes to the coordinator in the abort."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class Device:
    """One emulated phone (see the module docstring). Not thread-safe: drive it from one task at a time."""

    def __init__(
        self,
        config: DeviceConfig,
        client: CoordinatorClient,
        *,
        conditions: Callable[[], DeviceConditions],
        clock: DeviceClock = _WALL_CLOCK,
        trainer_factory: TrainerFactory = litert_trainer,
        database: DeviceDatabase | None = None,
    ) -> None:
        """``clock``: the device's time and the coordinator's (``device_runtime.timebase``; a real phone's by
        default, an emulated fleet's ``SimClock``); ``database``: a fleet's shared file (rows keyed by
        ``config.client``); default its own device.sqlite."""
        self.config = config
        self._client = client
        self._conditions = conditions
        self._clock = clock
        self._trainer_factory = trainer_factory
        self._owns_db = database is None
        self._db = database if database is not None else DeviceDatabase(Path(config.directory) / DATABASE_FILE)
        self.examples = ExampleStore(self._db, config.client, config.retention_seconds)
        self.events = ev.EventLog(self._db, config.client)
        self._state_store = StateStore(self._db, config.client)
        self._credentials = CredentialStore(self._db, config.client)
        self.state = self._state_store.load()
        self.cache = BlobCache(config.cache_directory or Path(config.directory) / "cache")
        self._rng = np.random.default_rng([config.seed, _JITTER_SALT, config.client])

    def close(self) -> None:
        if self._owns_db:
            self._db.close()

    def add_examples(self, examples: list[StoredExample]) -> int:
        return self.examples.add(examples)

    def _schedule(
        self, delay: float, *, failures: int = 0, open_session: str | None = None, open_token: str | None = None
    ) -> float:
        self.state = SchedulerState(self._clock.now() + delay, failures, open_session, open_token)
        self._state_store.save(self.state)
        return self.state.next_checkin

    # -- one attempt ---------------------------------------------------------------------------------------------

    def step(self, before_batch: BatchHook | None = None) -> StepOutcome:
        """Check eligibility, check in and, if assigned, run the session; never raises for bad input."""
        now = self._clock.now()
        self.examples.purge(now)
        if self.state.open_session is not None:
            self._abandon_open_session(now)
        policy = self.config.eligibility
        last = self.events.last_time(ev.UPLOADED)
        count = self.examples.count(now)
        reason = ineligibility(self._conditions(), policy, example_count=count, last_participation=last, now=now)
        if reason is not None:
            delay = ineligible_delay(self.config.retry, self._rng)
            if reason == TOO_SOON and last is not None:
                delay = max(last + policy.min_separation_seconds - now, 0.0) + jittered(1.0, 0.5, self._rng)
            return StepOutcome("ineligible", reason, self._schedule(delay))
        credential = self._credential(now)
        if isinstance(credential, StepOutcome):
            return credential
        self.events.record(now, ev.CHECKIN, examples=count)
        request = CheckinRequest(
            client_version=CLIENT_VERSION,
            runtime=RUNTIME,
            codecs=list(self.config.codecs),
            example_count=count,
            token_count=self.examples.token_count(now),
            credential=credential,
        )
        try:
            response = self._client.checkin(self.config.population, request)
        except CoordinatorError as err:
            if err.reason in CREDENTIAL_REASONS:  # expired, or the coordinator's key changed: enroll again soon
                self._credentials.clear()
                self.events.record(
                    now, ev.ERROR, during="checkin", transient=False, status=err.status, reason=err.reason
                )
                return StepOutcome(ev.ERROR, str(err), self._schedule(transient_delay(1, self.config.retry, self._rng)))
            return self._failed(now, err, "checkin")
        if response.outcome == "rejected" or response.assignment is None:
            window = response.retry_window  # pace steering: the coordinator's wall seconds, honoured as such
            delay = (
                self._clock.device_seconds(retry_window_delay(window.min_seconds, window.max_seconds, self._rng))
                if window is not None
                else ineligible_delay(self.config.retry, self._rng)
            )
            self.events.record(now, ev.REJECTED, reason=response.reason)
            return StepOutcome(ev.REJECTED, response.reason or "", self._schedule(delay))
        assignment = response.assignment
        self.events.record(now, ev.ACCEPTED, session=assignment.session_id, round=assignment.round)
        self._schedule(0.0, open_session=assignment.session_id, open_token=assignment.upload_token)
        return self._run_session(assignment, before_batch)

    def _credential(self, now: float) -> str | StepOutcome:
        """The stored credential, enrolling first if there is none usable (a failed enrollment is a failed step)."""
        stored = self._credentials.load()
        if stored is not None and stored.usable(self.config.population, self._clock.wall_now()):
            return stored.credential
        try:
            enrolled = self._client.enroll(
                self.config.population, EnrollRequest(client_version=CLIENT_VERSION), self.config.enroll_key
            )
        except CoordinatorError as err:
            return self._failed(now, err, "enroll")
        self._credentials.save(StoredCredential(self.config.population, enrolled.credential, enrolled.expires_unix))
        return enrolled.credential

    def _failed(self, now: float, err: CoordinatorError, during: str) -> StepOutcome:
        self.events.record(now, ev.ERROR, during=during, transient=err.transient, status=err.status, reason=err.reason)
        logger.info("device %d: %s failed: %s", self.config.client, during, err)
        if err.transient:
            failures = self.state.failures + 1
            return StepOutcome(
                ev.ERROR,
                str(err),
                self._schedule(transient_delay(failures, self.config.retry, self._rng), failures=failures),
            )
        return StepOutcome(ev.ERROR, str(err), self._schedule(permanent_delay(self.config.retry, self._rng)))

    def _abort(self, session_id: str, token: str | None, reason: str) -> None:
        if token is None:  # a session from before tokens were kept: it times out on the coordinator
            return
        try:
            self._client.abort(session_id, token, reason)
        except CoordinatorError as err:  # best effort: the session times out on the coordinator anyway
            logger.info("device %d: abort of %s failed: %s", self.config.client, session_id, err)

    def _abandon_open_session(self, now: float) -> None:
        """A session left open by a restart (the emulator was stopped mid-training): abort it, carry on."""
        session = self.state.open_session
        assert session is not None
        self.events.record(now, ev.INTERRUPTED, session=session, reason="restarted")
        self._abort(session, self.state.open_token, "restarted")
        self._schedule(0.0)

    # -- a session ----------------------------------------------------------------------------------------------

    def _run_session(self, assignment: Assignment, before_batch: BatchHook | None) -> StepOutcome:
        session = assignment.session_id
        started = time.perf_counter()
        try:
            manifest, train_tflite, weights = self._download(assignment)
            download_seconds = time.perf_counter() - started
            result = self._train(assignment, manifest, train_tflite, weights, before_batch)
        except _Refused as refusal:
            now = self._clock.now()
            self.events.record(now, ev.REFUSED, session=session, reason=refusal.reason, message=str(refusal))
            logger.warning("device %d refused session %s: %s", self.config.client, session, refusal)
            self._abort(session, assignment.upload_token, refusal.reason)
            return StepOutcome(ev.REFUSED, str(refusal), self._schedule(permanent_delay(self.config.retry, self._rng)))
        except TrainingInterrupted as stop:
            now = self._clock.now()
            self.events.record(now, ev.INTERRUPTED, session=session, reason=stop.reason, batches=stop.batches_done)
            self._abort(session, assignment.upload_token, stop.reason)
            return StepOutcome(
                ev.INTERRUPTED, stop.reason, self._schedule(ineligible_delay(self.config.retry, self._rng))
            )
        except CoordinatorError as err:
            self._abort(session, assignment.upload_token, "download_failed")
            return self._failed(self._clock.now(), err, "download")
        if not all(np.all(np.isfinite(d)) for d in result.delta):
            # diverged (e.g. a learning rate far too high): nothing worth sending, and the coordinator would refuse it
            self.events.record(self._clock.now(), ev.INTERRUPTED, session=session, reason="not_finite")
            self._abort(session, assignment.upload_token, "not_finite")
            return StepOutcome(
                ev.INTERRUPTED, "not_finite", self._schedule(ineligible_delay(self.config.retry, self._rng))
            )
        if assignment.secure is not None:
            return self._secure_upload(assignment, result, download_seconds)
        return self._upload(assignment, result, download_seconds)

    def _blob(self, url: str, sha256: str, what: str) -> bytes:
        try:
            data, _ = self.cache.fetch(sha256, lambda: self._client.fetch(url), what)
        except HashMismatchError as err:
            raise _Refused(f"{what}_hash_mismatch", str(err)) from err
        return data

    def _download(self, assignment: Assignment) -> tuple[PlanManifest, bytes, list[np.ndarray]]:
        plan = self._blob(assignment.plan.url, assignment.plan.sha256, "plan")
        try:
            manifest = PlanManifest.from_json(plan)
        except ManifestError as err:
            raise _Refused("unsupported_plan", str(err)) from err
        train_sha = manifest.files.get(TRAIN_FILE)
        if train_sha is None:
            raise _Refused("unsupported_plan", f"the plan lists no {TRAIN_FILE}")
        if self.config.tokenizer_sha256 is not None and manifest.tokenizer_sha256 != self.config.tokenizer_sha256:
            raise _Refused("tokenizer_mismatch", f"plan tokenizer {manifest.tokenizer_sha256[:12]} is not the device's")
        train_tflite = self._blob(f"{API_PREFIX}/blobs/{train_sha}", train_sha, "model")
        checkpoint = self._blob(assignment.checkpoint.url, assignment.checkpoint.sha256, "checkpoint")
        try:
            weights = decode_weights(checkpoint)
            manifest.check_tensors(weights, "checkpoint")
        except (WireError, ManifestError) as err:
            raise _Refused("bad_checkpoint", str(err)) from err
        return manifest, train_tflite, weights

    def _train(
        self,
        assignment: Assignment,
        manifest: PlanManifest,
        train_tflite: bytes,
        weights: list[np.ndarray],
        before_batch: BatchHook | None,
    ) -> LocalResult:
        hp = assignment.hyperparameters
        if assignment.codec not in self.config.codecs:
            raise _Refused("codec", f"assigned codec {assignment.codec!r} is not one of {self.config.codecs}")
        pad_id = int(manifest.model_config.get("pad_id", 0))
        bos_id = int(manifest.model_config.get("bos_id", 2))
        now = self._clock.now()
        rows = client_rows(
            self.examples.examples(now),
            manifest.seq_len,  # the plan fixes batch size and sequence length
            bos_id=bos_id,
            pad_id=pad_id,
            seed=hp.data_seed,  # the task's seed, not the session's: rows as simulation orders them
            round_num=assignment.round,
            client=self.config.client,
            max_rows=hp.max_rows,
        )
        if len(rows[0]) == 0:
            raise TrainingInterrupted("no_examples", 0)
        try:
            trainer = self._trainer_factory(train_tflite, manifest)
        except LiteRTModelError as err:
            raise _Refused("unsupported_plan", str(err)) from err
        policy = self.config.eligibility

        def check(batch: int, total: int) -> str | None:
            blocked = conditions_block(self._conditions(), policy)
            if blocked is None and before_batch is not None:
                blocked = before_batch(batch, total)
            return blocked

        try:
            return train_locally(
                trainer,
                weights,
                rows,
                epochs=hp.local_epochs,
                learning_rate=hp.learning_rate,
                pad_id=pad_id,
                before_batch=check,
            )
        except LiteRTModelError as err:  # e.g. token ids beyond the plan's vocabulary
            raise _Refused("unsupported_plan", str(err)) from err
        finally:
            del trainer  # the interpreter lives only while training: memory stays bounded

    def _upload(self, assignment: Assignment, result: LocalResult, download_seconds: float) -> StepOutcome:
        session = assignment.session_id
        blob = encode_update(
            result.delta,
            codec=assignment.codec,
            round=assignment.round,
            base_version=assignment.model_version,
            weight=result.weight,
            seed=assignment.seed,
            rotation_seed=assignment.rotation_seed,
            clip_norm=assignment.clip_norm,
        )
        raw = raw_nbytes([d.shape for d in result.delta])
        now = self._clock.now()
        self.events.record(
            now, ev.TRAINED, session=session, round=assignment.round, batches=result.batches, weight=result.weight
        )
        try:
            self._client.upload(session, assignment.upload_token, blob)
        except CoordinatorError as err:
            # the work is lost either way: a refused update is never resent, a transient failure backs off
            return self._failed(now, err, "upload")
        return self._completed(assignment, result, download_seconds, len(blob), raw, now)

    def _secure_upload(self, assignment: Assignment, result: LocalResult, download_seconds: float) -> StepOutcome:
        """The secure round's four phases (``secure_session``): only the masked ring vector leaves the device."""
        session = assignment.session_id
        now = self._clock.now()
        self.events.record(
            now, ev.TRAINED, session=session, round=assignment.round, batches=result.batches, weight=result.weight
        )
        rng = np.random.default_rng([assignment.seed, _SECAGG_SALT])  # stochastic rounding onto the ring
        try:
            secure = secure_assignment(assignment)
            transport = HttpSecAggTransport(self._client, assignment, wall_clock=self._clock.wall_now)
            run_secure_session(transport, secure, lambda: (result.delta, result.weight), rng)
        except CoordinatorError as err:  # a refusal (e.g. round_abandoned) or the coordinator out of reach
            return self._failed(self._clock.now(), err, "secagg")
        except ValueError as err:  # secagg.SecAggError: this device must not take part (unsafe request, ...)
            self.events.record(self._clock.now(), ev.REFUSED, session=session, reason="secagg", message=str(err))
            self._abort(session, assignment.upload_token, "secagg")
            return StepOutcome(ev.REFUSED, str(err), self._schedule(permanent_delay(self.config.retry, self._rng)))
        raw = raw_nbytes([d.shape for d in result.delta])
        return self._completed(assignment, result, download_seconds, 4 * secure.params.length, raw, self._clock.now())

    def _completed(
        self,
        assignment: Assignment,
        result: LocalResult,
        download_seconds: float,
        nbytes: int,
        raw: int,
        now: float,
    ) -> StepOutcome:
        """After a successful upload: record it, report, schedule the next check-in."""
        session = assignment.session_id
        self.events.record(now, ev.UPLOADED, session=session, round=assignment.round, bytes=nbytes, raw_bytes=raw)
        report = ReportRequest(
            status="completed",
            example_count=result.rows,
            download_seconds=download_seconds,
            train_seconds=result.train_seconds,
            metrics=_metrics(result, nbytes, raw),
        )
        try:
            self._client.report(session, assignment.upload_token, report)
        except CoordinatorError as err:
            logger.info("device %d: report of %s failed: %s", self.config.client, session, err)
        next_time = self._schedule(
            jittered(max(self.config.eligibility.min_separation_seconds, 1.0), self.config.retry.jitter, self._rng)
        )
        return StepOutcome(ev.UPLOADED, f"{nbytes} bytes", next_time)


def _metrics(result: LocalResult, upload_bytes: int, raw_bytes: int) -> dict[str, float]:
    out = {
        "loss_before": result.before.loss,
        "loss_after": result.after.loss,
        "tokens": float(result.weight),
        "upload_bytes": float(upload_bytes),
        "raw_bytes": float(raw_bytes),
    }
    if result.before.tokens:
        out["recall1_before"] = result.before.correct_at_1 / result.before.tokens
        out["recall3_before"] = result.before.correct_at_3 / result.before.tokens
    if result.after.tokens:
        out["recall1_after"] = result.after.correct_at_1 / result.after.tokens
        out["recall3_after"] = result.after.correct_at_3 / result.after.tokens
    return out
