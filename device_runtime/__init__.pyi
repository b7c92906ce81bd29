# The public names of device_runtime, for type checkers and for lazy_loader.attach_stub in __init__.py:
# each submodule is imported when one of its names is first used (PEP 562).

from ._sqlite import DeviceDatabase, DeviceDatabaseError
from .availability import AVAILABILITIES, Habits, conditions_at
from .blob_cache import BlobCache, HashMismatchError
from .client import CoordinatorClient, CoordinatorError
from .device import Device, DeviceConfig, StepOutcome, litert_trainer
from .eligibility import DeviceConditions, EligibilityPolicy, conditions_block, ineligibility
from .event_log import Event, EventLog
from .example_store import ExampleStore, StoredExample, rebase_timestamps
from .fleet import Fleet, FleetConfig, FleetStats, device_conditions, fleet_database
from .litert_model import EvalCounts, LiteRTModelError, LiteRTPredictor, LiteRTTrainer
from .rows import client_rows, training_batches
from .scheduler import RetryPolicy, SchedulerState, is_transient_status
from .secure_session import (
    HttpSecAggTransport,
    SecAggTransport,
    SecureAssignment,
    run_secure_session,
    secure_assignment,
)
from .timebase import DeviceClock, SimClock, WallClock
from .training import LocalResult, Trainer, TrainingInterrupted, train_locally

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
