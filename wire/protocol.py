"""The JSON messages of the coordinator's HTTP protocol (the HTTP boundary, pydantic).

The protocol follows the shape of Google's federated compute platform and
"Towards Federated Learning at Scale: System Design" (Bonawitz et al. 2019):
devices decide their own eligibility, *check in*, and are either given an
assignment for a round or told when to come back (a retry window chosen by pace
steering); an assigned device downloads a content-addressed plan and checkpoint,
trains, uploads its encoded update (``wire.update``, binary, not JSON) with a
single-use token, then reports how it went. Control is JSON (these models);
data (plans, checkpoints, updates) is binary.

Paths (all relative to the coordinator's base URL):

- ``POST /v1/populations/{population}/enroll``: :class:`EnrollRequest` -> :class:`EnrollResponse` (once per
  device: the credential it presents at every check-in; header ``X-Enroll-Key`` if the coordinator has one).
- ``POST /v1/populations/{population}/checkin``: :class:`CheckinRequest` -> :class:`CheckinResponse`.
- ``GET /v1/blobs/{sha256}``: plan / checkpoint bytes, gzip-encoded, ``ETag`` = sha256, immutable.
- ``PUT /v1/sessions/{session_id}/update``: ``Authorization: Bearer <upload_token>``, body
  ``application/octet-stream`` (``wire.update.encode_update``) -> :class:`UploadResponse`.
- ``POST /v1/sessions/{session_id}/report``: ``Authorization: Bearer <upload_token>``, :class:`ReportRequest`
  -> :class:`Ack`.
- ``POST /v1/sessions/{session_id}/abort``: ``Authorization: Bearer <upload_token>``, :class:`AbortRequest`
  -> :class:`Ack`.
- Admin under ``/v1/admin/...`` with header ``X-API-Key`` (:class:`TaskCreate`, :class:`TaskStatus`, ...).

Refusals are 4xx with :class:`ErrorBody` ``{"detail": {"reason": ..., "message": ...}}``; the
``reason`` codes are listed in :data:`UPLOAD_REASONS`, :data:`SESSION_REASONS` and :data:`CREDENTIAL_REASONS`.

Time: every duration and instant in these messages is the coordinator's wall
clock, in seconds (``*_seconds``) and seconds since the epoch (``*_unix``): a
retry window, a session's deadline, a credential's expiry, a round's selection
and report windows, the seconds a device reports it spent. A device on another
clock (the emulator's, ``speedup`` times faster) converts at its own boundary
(``device_runtime.timebase``), so pace steering means the same to an emulated
fleet as to real phones.
"""

from __future__ import annotations

import math
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wire.contract import MAX_DATA_SEED, ClientTraining

API_PREFIX = "/v1"
API_KEY_HEADER = "X-API-Key"
ENROLL_KEY_HEADER = "X-Enroll-Key"  # the stand-in for a platform attestation verdict (docs/threat-model.md)

SHA256_PATTERN = r"^[0-9a-f]{64}$"
# The server-side L2 bound of an update when a task names none. Finite, so that one device cannot move the
# model arbitrarily far (issue 14: one upload of 1e30 values moved it to |w| = 9.7e29); large, so that it does
# not bite honest updates: the small preset's deltas on Shakespeare (5k words, initial model, client rate 0.5,
# up to 256 rows in batches of 16) measured 0.06 / 0.12 / 0.54 (min / median / max of 20 clients), so 10 leaves
# a margin of about 20 for larger rates, more local epochs and the gboard preset. A bound only clips (or
# refuses, with norm_policy "reject"); tasks that know their update norms (the commit log's `norm`) should set
# a tighter one, and a DP task's bound S also sets its noise.
DEFAULT_NORM_BOUND = 10.0
MAX_METRIC = 1e12  # reported metric values are bounded so that per-round sums stay finite
# Population and task names appear in URLs and logs: keep them plain.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# Free text a device sends (abort reasons, metric names) ends up in logs: printable ASCII only, so no
# control character can forge a log line (issue 14, point 9).
PRINTABLE_PATTERN = r"^[\x20-\x7e]+$"
CREDENTIAL_PATTERN = r"^[A-Za-z0-9_.-]+$"
# The most bytes a coordinator reads of a device's JSON message (check-in, enroll, report, abort) before refusing
# it (413 ``too_large``): every field of CheckinRequest at its bound, each character escaped, stays under 5 KB,
# and the others are smaller, so no one can make the coordinator buffer megabytes before it judges a request.
MAX_MESSAGE_BYTES = 8192

# Why an upload was refused (``ErrorDetail.reason``), with the HTTP status the coordinator uses.
UPLOAD_REASONS: dict[str, int] = {
    "unknown_session": 404,  # no such session (or its round is long gone)
    "missing_token": 401,  # no ``Authorization: Bearer`` header
    "bad_token": 403,  # the token does not match the session
    "token_used": 403,  # the session already uploaded (a replay)
    "session_aborted": 409,  # the device aborted this session earlier
    "round_closed": 409,  # the round already reached its goal, or was committed / abandoned
    "deadline_passed": 409,  # the session's report deadline has passed
    "too_large": 413,  # body above the task's size bound (a JSON message's: MAX_MESSAGE_BYTES)
    "truncated": 422,  # wire.update.WireError reasons ...
    "bad_magic": 422,
    "unsupported_version": 422,
    "checksum": 422,
    "malformed": 422,
    "wrong_round": 422,  # the update names another round than the session's
    "stale_base_version": 422,  # trained on another model version than the round's
    "tensor_count": 422,
    "shape": 422,
    "dtype": 422,
    "codec": 422,  # encoded with another codec than the assignment's
    "not_finite": 422,  # NaN or infinity in a decoded tensor
    "norm_too_large": 422,  # L2 norm above the bound and the task rejects rather than clips
    "bad_weight": 422,  # FedAvg weight not positive, not finite, or above what the plan allows
}
# Why a secure-aggregation request was refused (``/v1/sessions/{id}/secagg/{phase}``).
SECAGG_REASONS: dict[str, int] = {
    "unknown_phase": 404,  # not one of SECAGG_PHASES
    "not_secure": 409,  # the session's round does not use secure aggregation
    "phase_not_open": 409,  # too early: poll again later
    "phase_closed": 409,  # too late, or the message was for another phase
    "round_abandoned": 409,  # the secure round fell below its threshold: nothing was revealed
    "dropped": 409,  # the device missed an earlier phase and is out of this round
    "secagg_invalid": 422,  # a message that does not fit the round (secagg.encoding / secagg.phases)
    "secure_round": 409,  # a plain update upload to a task that takes masked inputs only
}
SECAGG_PHASES: tuple[str, ...] = ("advertise_keys", "share_keys", "masked_input", "unmask")

SESSION_REASONS: dict[str, int] = {
    "unknown_session": 404,
    "missing_token": 401,  # report / abort / secagg need ``Authorization: Bearer <upload_token>`` too
    "bad_token": 403,
    "already_reported": 409,
    "unknown_population": 404,
}
# Why an enrollment or a check-in's credential was refused.
CREDENTIAL_REASONS: dict[str, int] = {
    "missing_credential": 401,  # a check-in without the credential from POST .../enroll
    "bad_credential": 403,  # not issued by this coordinator (forged, altered, another coordinator's key)
    "credential_expired": 401,  # enroll again
    "wrong_population": 403,  # a credential issued for another population
    "bad_enroll_key": 403,  # the enrollment guard refused (missing or wrong X-Enroll-Key)
    "enroll_rate": 429,  # too many enrollments from this address: retry later
}


class _Message(BaseModel):
    """Requests refuse unknown fields (a typo is an error, not silently ignored), NaN and infinities; immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ErrorDetail(_Message):
    reason: str
    message: str


class ErrorBody(_Message):
    """The body of every 4xx refusal."""

    detail: ErrorDetail


class CheckinRequest(_Message):
    """A device that decided it is eligible (idle, charging, on unmetered network) asks for work.

    Carries capabilities and the credential from enrollment (:class:`EnrollResponse`), which says only
    "an enrolled device": the coordinator uses it to give one device at most one session a round and to
    rate-limit its check-ins (Sybil resistance, issue 14 point 5), and stores only a per-round hash of it.
    """

    client_version: str = Field(min_length=1, max_length=64)
    runtime: str = Field(min_length=1, max_length=64, description="e.g. 'litert-2.3'")
    codecs: list[str] = Field(min_length=1, max_length=16, description="update codecs the device can encode")
    example_count: int = Field(ge=0, le=10**9, description="examples the device holds for this population")
    token_count: int | None = Field(
        default=None,
        ge=0,
        le=10**12,
        description="tokens in those examples; bounds the update's FedAvg weight (else example_count * seq_len)",
    )
    credential: str | None = Field(
        default=None, min_length=1, max_length=512, pattern=CREDENTIAL_PATTERN, description="from POST .../enroll"
    )

    @field_validator("codecs")
    @classmethod
    def _short_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not 0 < len(name) <= 32:
                raise ValueError(f"codec name of bad length: {name!r}")
        return value


class EnrollRequest(_Message):
    """A device asks for its credential once (a real deployment would attach a platform attestation here)."""

    client_version: str = Field(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)


class EnrollResponse(_Message):
    """The device keeps ``credential`` (opaque, signed by the coordinator) and presents it at every check-in."""

    credential: str
    expires_unix: float = Field(description="enroll again after this time")


class RetryWindow(_Message):
    """Come back at a uniformly random time in [min_seconds, max_seconds] from now (pace steering; the
    coordinator's wall seconds, like every time on the wire)."""

    min_seconds: float = Field(ge=0)
    max_seconds: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RetryWindow:
        if self.max_seconds < self.min_seconds:
            raise ValueError(f"max_seconds {self.max_seconds} < min_seconds {self.min_seconds}")
        return self


class Resource(_Message):
    """A content-addressed download: fetch ``url`` and check the bytes hash to ``sha256``."""

    url: str
    sha256: str = Field(pattern=SHA256_PATTERN)


class Hyperparameters(_Message):
    """Local training settings of the round: ``wire.contract.ClientTraining`` but the codec and clip (the
    assignment's own fields). Batch size and sequence length are the plan's (its manifest), not settings."""

    local_epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    max_rows: int = Field(ge=1)
    data_seed: int = Field(
        default=0,
        ge=0,
        le=MAX_DATA_SEED,
        description="the task's seed of the row order (wire.row_order) as in simulation, so a deployed round "
        "reproduces a simulated one (issue 8)",
    )

    @classmethod
    def of(cls, training: ClientTraining) -> Hyperparameters:
        """The assignment's part of ``training`` (a deployed task always caps rows: ``max_rows`` is set)."""
        if training.max_rows is None:
            raise ValueError("a deployed task needs max_rows (it bounds the FedAvg weight a device may claim)")
        return cls(
            local_epochs=training.local_epochs,
            learning_rate=training.learning_rate,
            max_rows=training.max_rows,
            data_seed=training.data_seed,
        )


class SecureAggregation(_Message):
    """A secure round's public parameters (``secagg.RoundParams`` and the ring grid) and this device's id.

    The device masks its clipped, quantized delta (``secagg.updates``) and talks to
    ``/v1/sessions/{id}/secagg/{phase}`` instead of uploading an update (Bonawitz et al. 2017).
    """

    device: int = Field(ge=0, description="this device's id in the round (its assignment order)")
    devices: int = Field(ge=2, le=100_000, description="n: ids run 0 .. n - 1")
    round_seed: int = Field(ge=0, le=2**32 - 1, description="public seed of the neighbour graph")
    length: int = Field(ge=1, description="coordinates of the flattened model")
    threshold: int = Field(ge=2, description="fewest devices whose sum may be revealed")
    bits: int = Field(ge=1, le=24, description="quantization bits a coordinate on the grid [-clip, clip]")
    clip: float = Field(gt=0, description="L2 bound of the delta, and the grid's range")
    max_weight: float = Field(gt=0, description="the largest token weight; the device sends weight / max_weight")


class Assignment(_Message):
    """A device's part in one round; ``upload_token`` is single-use and shown only here."""

    session_id: str
    population: str
    task: str
    round: int = Field(ge=0)
    model_version: int = Field(ge=0, description="the checkpoint's version; updates carry it as base_version")
    plan: Resource = Field(description="the exported manifest.json; its files are fetched from /v1/blobs/{sha256}")
    checkpoint: Resource = Field(description="wire.update.encode_weights bytes of the round's model")
    upload_token: str
    deadline_unix: float = Field(description="uploads after this time (seconds since the epoch) are refused")
    hyperparameters: Hyperparameters
    codec: str
    clip_norm: float | None = Field(default=None, description="clip the delta's global L2 norm to this on device")
    seed: int = Field(
        ge=0, description="the session's seed: stochastic rounding (wire.codec); rows follow the task's data seed"
    )
    rotation_seed: int = Field(
        ge=0, le=2**32 - 1, description="the round's rotation seed, the same for every device (wire.codec)"
    )
    secure: SecureAggregation | None = Field(default=None, description="set when the round is securely aggregated")

    @property
    def training(self) -> ClientTraining:
        """The round's client-training contract (``ContractError`` if the codec is unknown)."""
        hp = self.hyperparameters
        return ClientTraining(
            local_epochs=hp.local_epochs,
            learning_rate=hp.learning_rate,
            max_rows=hp.max_rows,
            data_seed=hp.data_seed,
            codec=self.codec,
            clip_norm=self.clip_norm,
        )


class CheckinResponse(_Message):
    outcome: Literal["accepted", "rejected"]
    assignment: Assignment | None = None
    retry_window: RetryWindow | None = None
    reason: str | None = Field(default=None, description="why rejected: no_round, paused, round_full, codec, ...")

    @model_validator(mode="after")
    def _consistent(self) -> CheckinResponse:
        if self.outcome == "accepted" and self.assignment is None:
            raise ValueError("an accepted check-in carries an assignment")
        if self.outcome == "rejected" and self.retry_window is None:
            raise ValueError("a rejected check-in carries a retry window")
        return self


class UploadResponse(_Message):
    """The update was validated and added to the round's running sum."""

    session_id: str
    round: int
    accepted: bool = True
    clipped: bool = Field(description="whether the server clipped the update to the task's norm bound")
    received: int = Field(description="valid updates the round has so far")
    goal: int


class ReportRequest(_Message):
    """How the device's training went; metrics are aggregated per round (means on the status page)."""

    status: Literal["completed", "failed"]
    example_count: int = Field(ge=0, le=10**9)
    download_seconds: float = Field(ge=0, le=10**7)
    train_seconds: float = Field(ge=0, le=10**7)
    metrics: dict[str, float] = Field(default_factory=dict, max_length=32)

    @field_validator("metrics")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if not (0 < len(key) <= 64 and key.isascii() and key.isprintable()):
                raise ValueError(f"metric name of bad length or with non-printable characters: {key!r}")
            if not (math.isfinite(number) and abs(number) <= MAX_METRIC):
                raise ValueError(f"metric {key!r} is not a finite number within +-{MAX_METRIC:g}: {number}")
        return value


class AbortRequest(_Message):
    reason: str = Field(
        min_length=1, max_length=200, pattern=PRINTABLE_PATTERN, description="e.g. 'not_idle', 'battery_low'"
    )


class Ack(_Message):
    ok: bool = True


# ---------------------------------------------------------------- admin


class BlobInfo(_Message):
    """A blob stored with ``PUT /v1/admin/blobs`` (raw body), addressed by its sha256."""

    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int


Codec = Literal["float32", "quant8", "quant4", "quant2"]  # wire.codec.CODECS
TASK_TRAINING = ClientTraining(codec="quant8")
"""A deployed task's client-training defaults: the contract's, compressed to 8 bits (a phone's uplink is metered)."""


def task_training_fields(training: ClientTraining) -> dict[str, object]:
    """``training`` as :class:`TaskCreate`'s flat JSON fields (the admin API keeps its field names)."""
    return {
        "local_epochs": training.local_epochs,
        "learning_rate": training.learning_rate,
        "max_rows": training.max_rows,
        "seed": training.data_seed,
        "codec": training.codec,
        "client_clip_norm": training.clip_norm,
    }


class TaskCreate(_Message):
    """Create a population and its task from an exported plan.

    Upload the plan directory's ``manifest.json`` and every file it lists (``train.tflite``, ...)
    and the initial checkpoint (``wire.update.encode_weights`` bytes) as blobs first, then
    reference them here by sha256.
    """

    population: str = Field(pattern=NAME_PATTERN)
    task: str = Field(default="train", pattern=NAME_PATTERN)
    plan_sha256: str = Field(pattern=SHA256_PATTERN, description="blob of the manifest.json")
    checkpoint_sha256: str = Field(pattern=SHA256_PATTERN, description="blob of the initial weights")
    goal_count: int = Field(ge=1, le=100_000)
    over_selection: float = Field(default=1.3, ge=1.0, le=10.0)
    min_reports: int | None = Field(default=None, ge=1, description="commit at the deadline with this many")
    selection_seconds: float = Field(default=60.0, gt=0, le=86_400)
    report_seconds: float = Field(default=600.0, gt=0, le=7 * 86_400, description="from the round's start")
    codec: Codec = Field(default=cast(Codec, TASK_TRAINING.codec))
    client_clip_norm: float | None = Field(default=None, gt=0, description="clip on device before encoding")
    norm_bound: float = Field(
        default=DEFAULT_NORM_BOUND,
        gt=0,
        description="server-side L2 bound S of a decoded update (null: the default); a commit whose mean or step "
        "exceeds what S allows is abandoned. With DP the noise std is dp_noise_multiplier * S: set S deliberately",
    )
    norm_policy: Literal["clip", "reject"] = "clip"
    max_update_bytes: int = Field(default=64 * 2**20, ge=1024)
    server_optimizer: Literal["fedavg", "fedadam"] = "fedavg"
    server_lr: float = Field(default=1.0, gt=0, le=100)
    adam_beta1: float = Field(default=0.9, ge=0, lt=1)
    adam_beta2: float = Field(default=0.999, ge=0, lt=1)
    adam_epsilon: float = Field(default=1e-3, gt=0)
    dp_noise_multiplier: float = Field(
        default=0.0, ge=0, description="central DP (McMahan et al. 2018): needs norm_policy 'clip'"
    )
    dp_population_size: int | None = Field(
        default=None,
        ge=1,
        le=10**10,
        description="N, the users devices are drawn from (the server cannot know it): with it the status reports "
        "the (epsilon, delta) spent by the committed rounds, assuming uniform sampling (privacy.SAMPLING_ASSUMPTION)",
    )
    dp_delta: float | None = Field(
        default=None, gt=0, lt=1, description="the delta of the reported epsilon (default 1 / N^1.1)"
    )
    local_epochs: int = Field(default=TASK_TRAINING.local_epochs, ge=1, le=100)
    learning_rate: float = Field(default=TASK_TRAINING.learning_rate, gt=0, le=100)
    max_rows: int = Field(default=cast(int, TASK_TRAINING.max_rows), ge=1, le=10**7)
    max_rounds: int | None = Field(default=None, ge=1, description="stop after this many committed rounds")
    seed: int = Field(
        default=TASK_TRAINING.data_seed, ge=0, le=MAX_DATA_SEED, description="the task's seed: data seed of the rows"
    )
    secure_aggregation: bool = Field(
        default=False, description="devices upload only masked inputs; the server learns only their sum (secagg)"
    )
    secagg_threshold: int | None = Field(
        default=None, ge=2, description="fewest devices whose sum may be revealed (default: min_reports or goal)"
    )
    secagg_bits: int = Field(default=16, ge=1, le=24, description="bits a coordinate in a secure round")
    secagg_clip: float = Field(default=1.0, gt=0, le=1e6, description="L2 clip of a secure round's deltas")

    @property
    def training(self) -> ClientTraining:
        """The task's client-training contract (``seed`` is its data seed, ``client_clip_norm`` its clip)."""
        return ClientTraining(
            local_epochs=self.local_epochs,
            learning_rate=self.learning_rate,
            max_rows=self.max_rows,
            data_seed=self.seed,
            codec=self.codec,
            clip_norm=self.client_clip_norm,
        )

    @field_validator("norm_bound", mode="before")
    @classmethod
    def _bounded(cls, value: object) -> object:
        """There is no unbounded mode: null (and configs stored before the bound existed) means the default."""
        return DEFAULT_NORM_BOUND if value is None else value

    @model_validator(mode="after")
    def _coherent(self) -> TaskCreate:
        if self.min_reports is not None and self.min_reports > self.goal_count:
            raise ValueError(f"min_reports {self.min_reports} > goal_count {self.goal_count}")
        if self.selection_seconds >= self.report_seconds:
            raise ValueError(f"selection_seconds {self.selection_seconds} >= report_seconds {self.report_seconds}")
        if self.dp_noise_multiplier > 0 and self.norm_policy != "clip":
            raise ValueError("dp_noise_multiplier > 0 needs norm_policy 'clip'")
        if self.dp_population_size is not None and self.dp_population_size < self.goal_count:
            raise ValueError(f"dp_population_size {self.dp_population_size} < goal_count {self.goal_count}")
        if self.secure_aggregation and self.dp_noise_multiplier > 0:
            raise ValueError("secure_aggregation with dp_noise_multiplier is not supported")
        if self.secagg_threshold is not None and self.secagg_threshold > math.ceil(
            self.goal_count * self.over_selection
        ):
            raise ValueError(f"secagg_threshold {self.secagg_threshold} exceeds the round's assignments")
        return self


class RoundInfo(_Message):
    round: int
    state: Literal["selecting", "reporting", "committed", "abandoned"]
    model_version: int = Field(description="the version devices trained on")
    committed_version: int | None = Field(description="the version this round produced, if committed")
    goal: int
    target: int = Field(description="assignments allowed (goal times over-selection)")
    assigned: int
    received: int
    aborted: int
    reports_completed: int
    reports_failed: int
    rejections: dict[str, int]
    metrics: dict[str, float] = Field(description="means of device-reported metrics")
    opened_unix: float
    closed_unix: float | None
    weight_sum: float


class PrivacySpent(_Message):
    """The (epsilon, delta) that a DP task's committed rounds have spent (``privacy.dp_epsilon_of_rounds``)."""

    noise_multiplier: float
    norm_bound: float
    rounds: int = Field(description="committed rounds, each a released noised sum")
    population: int | None = Field(description="N as the task declared it (dp_population_size)")
    delta: float | None
    epsilon: float | None = Field(description="None when the task declared no population size")
    accounting: str = Field(description="the sampling assumption the epsilon rests on")


class TaskStatus(_Message):
    population: str
    task: str
    paused: bool
    finished: bool
    model_version: int
    rounds_committed: int
    rounds_abandoned: int
    current: RoundInfo | None
    config: TaskCreate
    privacy: PrivacySpent | None = Field(default=None, description="set for DP tasks")


class ModelInfo(_Message):
    version: int
    round: int | None
    sha256: str
    created_unix: float
    url: str
