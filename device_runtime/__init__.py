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

The names above are listed in ``__init__.pyi`` and imported on first use (PEP 562, through
``lazy_loader``), so ``import device_runtime.litert_model`` (``fedkeys suggest`` on a ``.tflite``)
loads LiteRT and numpy, not httpx, pydantic or the secure-aggregation code.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
