"""device_runtime: the phone side of federated training, and a fleet of emulated phones.

What runs on each phone (Bonawitz et al. 2019, "Towards Federated Learning at
Scale: System Design"; Hard et al. 2018 for Gboard), faithfully enough that the
coordinator cannot tell an emulated phone from a real one:

- :class:`ExampleStore`: the user's messages in the device's SQLite file, with a
  retention window; text never leaves the device;
- :func:`ineligibility` / :func:`conditions_block`: idle, charging, unmetered,
  battery, enough examples and minimum separation, decided on the device from a
  :class:`DeviceConditions` record and re-checked between training batches;
- ``scheduler``: retry windows, exponential backoff with jitter on transient
  errors, a long wait on permanent ones, state persisted across restarts;
- :class:`CoordinatorClient`: the HTTP protocol of ``wire.protocol`` (httpx);
- ``credential_store``: the credential from enrollment, kept across restarts and
  presented at every check-in (one session per device per round);
- :class:`BlobCache`: plans and checkpoints by content hash, verified;
- :func:`client_rows` / :func:`train_locally`: the contract's row order and
  FedAvg's client update through the export's :class:`LiteRTTrainer`;
- :class:`Device`: one phone's check-in / train / upload / report loop with its
  :class:`EventLog`;
- :func:`run_secure_session`: a secure round's four phases (``secagg``) over a
  :class:`SecAggTransport`, e.g. :class:`HttpSecAggTransport`;
- :class:`Fleet`: many devices on a :class:`SimClock` with diurnal availability,
  dropouts and slow devices (``fedkeys devices emulate``), their rows in one
  :class:`DeviceDatabase` (:func:`fleet_database`);
- ``timebase``: the device's time and the coordinator's (:class:`WallClock` on a
  phone, :class:`SimClock` in the emulator, which turns the coordinator's wall
  seconds into emulated ones in one place).

Uses ``model`` (row building), ``wire`` (codec, messages) and ``secagg``; never TFF.
"""

from device_runtime._sqlite import DeviceDatabase, DeviceDatabaseError
from device_runtime.availability import AVAILABILITIES, Habits, conditions_at
from device_runtime.blob_cache import BlobCache, HashMismatchError
from device_runtime.client import CoordinatorClient, CoordinatorError
from device_runtime.device import Device, DeviceConfig, StepOutcome, litert_trainer
from device_runtime.eligibility import DeviceConditions, EligibilityPolicy, conditions_block, ineligibility
from device_runtime.event_log import Event, EventLog
from device_runtime.example_store import ExampleStore, StoredExample, rebase_timestamps
from device_runtime.fleet import Fleet, FleetConfig, FleetStats, device_conditions, fleet_database
from device_runtime.litert_model import EvalCounts, LiteRTModelError, LiteRTPredictor, LiteRTTrainer
from device_runtime.rows import client_rows, training_batches
from device_runtime.scheduler import RetryPolicy, SchedulerState, is_transient_status
from device_runtime.secure_session import (
    HttpSecAggTransport,
    SecAggTransport,
    SecureAssignment,
    run_secure_session,
    secure_assignment,
)
from device_runtime.timebase import DeviceClock, SimClock, WallClock
from device_runtime.training import LocalResult, Trainer, TrainingInterrupted, train_locally

__all__ = [
    "AVAILABILITIES",
    "BlobCache",
    "CoordinatorClient",
    "CoordinatorError",
    "Device",
    "DeviceClock",
    "DeviceConditions",
    "DeviceConfig",
    "DeviceDatabase",
    "DeviceDatabaseError",
    "EligibilityPolicy",
    "EvalCounts",
    "Event",
    "EventLog",
    "ExampleStore",
    "Fleet",
    "FleetConfig",
    "FleetStats",
    "Habits",
    "HashMismatchError",
    "HttpSecAggTransport",
    "LiteRTModelError",
    "LiteRTPredictor",
    "LiteRTTrainer",
    "LocalResult",
    "RetryPolicy",
    "SchedulerState",
    "SecAggTransport",
    "SecureAssignment",
    "SimClock",
    "StepOutcome",
    "StoredExample",
    "Trainer",
    "TrainingInterrupted",
    "WallClock",
    "client_rows",
    "conditions_at",
    "conditions_block",
    "device_conditions",
    "fleet_database",
    "ineligibility",
    "is_transient_status",
    "litert_trainer",
    "rebase_timestamps",
    "run_secure_session",
    "secure_assignment",
    "train_locally",
    "training_batches",
]
