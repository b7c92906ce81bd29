"""coordinator: the FastAPI server that devices check in to (Bonawitz et al. 2019).

Devices check in, are assigned to a round or told when to come back (pace
steering), download a content-addressed plan and checkpoint, and upload an
encoded update that is validated and added to the round's running weighted sum
(in the rotated domain, in memory only: ``partials``, ``sealing``);
rounds commit (FedAvg / FedAdam / DP-FedAvg) at their goal or deadline; a task
with ``secure_aggregation`` runs the ``secagg`` phases instead and learns only
the sum of masked inputs (``secure_rounds``, Bonawitz et al. 2017); both
paths sit behind one interface (``aggregators``). State
lives in SQLite or PostgreSQL, safe across several worker processes and crashes.

Public API:

- :func:`create_app`, :class:`CoordinatorSettings`: the HTTP server;
- :class:`Database`: the state (``create_schema``);
- :class:`Coordinator` (device side), :class:`SecureRounds` (secure phases) and
  :class:`Admin` (tasks) without HTTP;
- the pure core: ``rounds`` (state machine), ``pace`` (retry windows),
  ``aggregation`` (``RotatedSum``, ``WeightedSum``), ``sum_kernels``, ``optimizers``,
  ``validation``;
- who may do what (docs/threat-model.md): ``gatekeeper`` (the one session
  policy for upload, report, abort and the secure phases), ``credentials`` and
  ``enrollment`` (device credentials, one session per credential per round),
  ``ratelimit`` (in-memory limits), ``secure_admission`` (secure-phase body bounds);
- what an operator sees: ``status_page`` (``/status``) with ``status_charts``
  (server-side SVG) and ``round_story.explain_round`` (why a round stalled);
  ``routes.docs`` serves ``/docs`` from local files.

It imports ``wire`` and ``secagg`` and never TensorFlow (Federated) or ``model``.
"""

from coordinator.admin import Admin
from coordinator.aggregation import WeightedSum
from coordinator.app import app_from_env, create_app
from coordinator.db import Database
from coordinator.errors import CoordinatorRefusal, SessionError, TaskError, UpdateRejected
from coordinator.optimizers import ServerOptimizerConfig
from coordinator.pace import PaceConfig, PaceInputs, retry_window
from coordinator.rounds import RoundPlan, RoundRecord, RoundState
from coordinator.secure_rounds import SecureRounds
from coordinator.service import Coordinator
from coordinator.settings import CoordinatorSettings
from coordinator.validation import UpdateLimits, decode_and_validate

__all__ = [
    "Admin",
    "Coordinator",
    "CoordinatorRefusal",
    "CoordinatorSettings",
    "Database",
    "PaceConfig",
    "PaceInputs",
    "RoundPlan",
    "RoundRecord",
    "RoundState",
    "SecureRounds",
    "ServerOptimizerConfig",
    "SessionError",
    "TaskError",
    "UpdateLimits",
    "UpdateRejected",
    "WeightedSum",
    "app_from_env",
    "create_app",
    "decode_and_validate",
    "retry_window",
]
