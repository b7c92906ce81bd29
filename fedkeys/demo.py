"""``fedkeys demo``: from a fresh machine to a simulated and a deployed keyboard model, in one report.

``run_demo`` is a sequence of named steps (``STEPS``), each timed and
announced (``demo [i/N]``):

1. ``prepare``: fetch and prepare the corpus (Shakespeare, one client per play
   role, as in LEAF), setting a share of users aside as proxy (public) data;
2. ``ngram``: the Kneser-Ney n-gram model that federated learning replaces;
3. ``pretrain``: a central model on the proxy users only, the public-data
   pretraining production keyboards start from (Xu et al. 2023; Nguyen et al.
   2023, "Where to Begin?"), or the ``init_from`` run;
4. ``simulation``: TFF FedAvg rounds (McMahan et al. 2017) from that model on
   the federated users;
5. ``central``: the same model trained centrally on the federated users' pooled
   text for as many tokens as the simulation used (federated/central at equal
   tokens);
6. ``export``: the on-device plan of the pretrained model (``fedkeys export tflite``);
7. ``deployment``: a coordinator (``fedkeys serve`` on SQLite, a child process),
   its task, a fleet of emulated phones training the plan in LiteRT over HTTP
   with diurnal availability (Bonawitz et al. 2019; Hard et al. 2018), the
   committed model downloaded as the run folder ``deployed/`` (as ``fedkeys
   admin download-model`` does: checkpoint, tokenizer, ``metrics.csv``,
   ``tensorboard/``, where it came from), and the parity check (one deployed
   round against one TFF round, in float32 and with the deployment's codec);
8. ``export-deployed``: the deployed model's plan, ``deployed/plan/`` with
   ``infer.tflite``, which ``fedkeys suggest`` and phones read;
9. ``evaluate``: validation recall against round for both (also into each
   run's ``tensorboard/``), test metrics for every model;
10. ``report``: ``report.html`` with the plots, suggestions and timings.

``tensorboard --logdir OUT`` shows the simulation (``sim/``) and the deployment
(``deployed/``) on the same charts, under the same names where the measure is
the same (``fedkeys.deployed_log``).

Test users are never trained on by any step, and proxy users only by the
pretraining. The coordinator child process and TFF's workers are always
stopped, whatever fails (``try``/``finally`` in their context managers).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from data_tools import PrepareConfig, PreparedCorpus, load_prepared, prepare_corpus
from device_runtime.timebase import SimClock
from fedkeys.admin_client import AdminClient
from fedkeys.baselines import CentralRunConfig, NgramRunConfig, run_central, run_ngram
from fedkeys.demo_config import POPULATION, DemoConfig
from fedkeys.demo_coordinator import coordinator_process
from fedkeys.demo_report import SUGGEST_CONTEXTS, write_report
from fedkeys.deployed_run import download_run
from fedkeys.export import ExportConfig, export_tflite
from fedkeys.suggest import suggest
from model import CentralConfig, ModelConfig
from wire.manifest import INFER_FILE

logger = logging.getLogger(__name__)

_START_UNIX = 1_767_571_200.0  # Monday 2026-01-05 00:00 UTC: the emulated day starts at midnight UTC
_FRESH_EACH_RUN = ("coordinator", "devices", "parity")
_CENTRAL_BATCH = 64


class _Phases:
    """Announce each step and keep its wall time."""

    def __init__(self, steps: int) -> None:
        self.seconds: dict[str, float] = {}
        self._steps = steps
        self._started = time.perf_counter()

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        index = len(self.seconds) + 1
        logger.info("demo [%d/%d] %s: %s", index, self._steps, name, what)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 1)
            logger.info("demo [%d/%d] %s done in %.1f s", index, self._steps, name, self.seconds[name])

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 1)


@dataclasses.dataclass
class DemoRun:
    """What the steps hand each other: inputs first, then each step's results as it produces them."""

    out: Path
    config: DemoConfig
    cache_dir: Path
    progress: bool
    data_dir: Path = Path()
    corpus: PreparedCorpus | None = None
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    ngram: dict[str, Any] = dataclasses.field(default_factory=dict)
    pretrained_dir: Path = Path()
    pretrained: dict[str, Any] = dataclasses.field(default_factory=dict)
    model_config: ModelConfig | None = None
    initial: list[np.ndarray] = dataclasses.field(default_factory=list)
    sim_rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    sim_versions: dict[int, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    central: dict[str, Any] = dataclasses.field(default_factory=dict)
    exported: dict[str, Any] = dataclasses.field(default_factory=dict)
    deployed_export: dict[str, Any] = dataclasses.field(default_factory=dict)
    deployed_versions: dict[int, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    deployed_rounds: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fleet_span: tuple[float, float] = (0.0, 0.0)  # emulated seconds
    fleet_clock: SimClock | None = None  # the fleet's clock, the one conversion of its span to wall seconds
    parity: dict[str, Any] | None = None
    scores: dict[str, Any] = dataclasses.field(default_factory=dict)
    phases: _Phases | None = None
    load_start: float = 0.0
    report: str = ""

    @property
    def tokenizer(self) -> Path:
        return self.data_dir / "tokenizer.model"

    @property
    def deployed_dir(self) -> Path:
        """The deployed model's run folder (``download_run``); its plan is ``deployed_dir / "plan"``."""
        return self.out / "deployed"

    def need_corpus(self) -> PreparedCorpus:
        assert self.corpus is not None, "the prepare step runs first"
        return self.corpus

    def need_model_config(self) -> ModelConfig:
        assert self.model_config is not None, "the pretrain step runs first"
        return self.model_config


def _prepare(run: DemoRun) -> None:
    config = run.config
    if config.data is not None:
        run.data_dir = config.data
    else:
        run.data_dir = run.out / "data"
        stats = run.data_dir / "stats.json"
        wanted = PrepareConfig(
            vocab_size=config.vocab_size, min_words=config.min_words, proxy_fraction=config.proxy_fraction
        )
        prepared_with = run.data_dir / "prepare.json"
        if stats.is_file() and json.loads(prepared_with.read_text()).get("config") == wanted.to_dict():
            logger.info("demo: reusing the prepared corpus in %s", run.data_dir)
        else:
            prepare_corpus(
                config.corpus, run.data_dir, wanted, cache_dir=run.cache_dir, progress=run.progress, overwrite=True
            )
    run.corpus = load_prepared(run.data_dir)
    run.stats = json.loads((run.data_dir / "stats.json").read_text())


def _ngram(run: DemoRun) -> None:
    run.ngram = run_ngram(run.data_dir, run.out / "ngram", NgramRunConfig(order=run.config.ngram_order), overwrite=True)


def _pretrain(run: DemoRun) -> None:
    """Central Adam on the proxy users (or the given run); the start of simulation and deployment alike."""
    from tff_sim.simulation import load_initial_model, sim_model_config

    config, corpus = run.config, run.need_corpus()
    run.model_config = sim_model_config(corpus.tokenizer.vocab_size, config.preset)
    if config.init_from is not None:
        run.pretrained_dir = config.init_from
    else:
        corpus.split("proxy")  # a corpus without proxy users is refused here, naming --proxy-fraction
        run.pretrained_dir = run.out / "pretrained"
        pretrain = CentralRunConfig(
            preset=config.preset,
            seq_len=config.seq_len,
            init_seed=config.seed,
            split="proxy",
            training=CentralConfig(
                max_epochs=config.pretrain_epochs,
                max_steps_per_epoch=config.pretrain_max_steps,
                learning_rate=config.pretrain_lr,
                patience=config.pretrain_epochs,
            ),
        )
        run_central(run.data_dir, run.pretrained_dir, pretrain, progress=run.progress, overwrite=True)
    initial = load_initial_model(run.pretrained_dir, run.model_config)  # refuses another model's checkpoint
    run.pretrained = initial.provenance
    run.initial = [np.asarray(w, np.float32) for w in initial.weights]


def _simulation(run: DemoRun) -> None:
    from fedkeys.demo_eval import write_run_dir
    from fedkeys.demo_sim import simulate
    from tff_sim.config import SimConfig

    config, corpus = run.config, run.need_corpus()
    scored = {r for r in range(1, config.rounds + 1) if r % config.eval_every == 0} | {config.rounds}
    sim = SimConfig(
        algorithm="fedavg",
        rounds=config.rounds,
        clients_per_round=config.clients_per_round,
        training=config.training,  # the deployment's: the simulation compresses as the phones do
        batch_size=config.batch_size,
        seq_len=config.seq_len,
        preset=config.preset,
        seed=config.seed,
    )
    run.sim_rows, run.sim_versions = simulate(
        corpus.train, run.need_model_config(), run.initial, sim, scored, run.out / "sim", progress=run.progress
    )
    write_run_dir(run.out / "sim", run.need_model_config(), run.sim_versions[config.rounds], run.tokenizer)
    (run.out / "sim" / "rounds.json").write_text(json.dumps(run.sim_rows, indent=1) + "\n")


def _central(run: DemoRun) -> None:
    """The pretrained model trained centrally on the federated users' pooled text, for the simulation's tokens."""
    from fedkeys.baselines import split_rows

    config = run.config
    sim_tokens = sum(int(r["tokens"]) for r in run.sim_rows)
    _, targets = split_rows(run.need_corpus().train, run.need_model_config(), config.seq_len)  # (R, T)
    tokens_per_batch = _CENTRAL_BATCH * np.count_nonzero(targets != run.need_model_config().pad_id) / len(targets)
    steps = max(1, round(sim_tokens / tokens_per_batch))
    central = CentralRunConfig(
        preset=config.preset,
        seq_len=config.seq_len,
        init_seed=config.seed,
        init_from=run.pretrained_dir / "checkpoint",
        training=CentralConfig(
            batch_size=_CENTRAL_BATCH, max_epochs=1, max_steps_per_epoch=steps, learning_rate=config.pretrain_lr
        ),
    )
    run.central = run_central(run.data_dir, run.out / "central", central, progress=run.progress, overwrite=True)


def _export(run: DemoRun) -> None:
    run.exported = export_tflite(run.pretrained_dir, run.out / "plan", _export_config(run.config), overwrite=True)


def _export_deployed(run: DemoRun) -> None:
    """The committed model's plan, so ``fedkeys suggest`` (and a phone) runs what the deployment trained."""
    plan = run.deployed_dir / "plan"
    run.deployed_export = export_tflite(run.deployed_dir, plan, _export_config(run.config), overwrite=True)
    run.deployed_export["suggestions"] = {c: suggest(plan / INFER_FILE, c) for c in SUGGEST_CONTEXTS}


def _export_config(config: DemoConfig) -> ExportConfig:
    return ExportConfig(batch_size=config.batch_size, seq_len=config.seq_len, learning_rate=config.client_lr)


def _deployment(run: DemoRun) -> None:
    config = run.config
    assert run.phases is not None
    corpus = run.need_corpus()
    with coordinator_process(run.out / "coordinator") as server, AdminClient(server.url, server.api_key) as admin:
        logger.info("demo: coordinator at %s (status page %s/status, log %s)", server.url, server.url, server.log_path)
        admin.create_task(run.out / "plan", run.initial, **config.task_fields())
        run.fleet_span, run.fleet_clock = _run_fleet(run.out, run.data_dir, server.url, server.api_key, config)
        status = admin.status(POPULATION)
        run.deployed_rounds = [r.model_dump() for r in sorted(admin.rounds(POPULATION), key=lambda r: r.round)]
        for version in range(status.model_version + 1):
            run.deployed_versions[version] = admin.model(POPULATION, version)
        download_run(admin, POPULATION, run.deployed_dir, version=status.model_version, overwrite=True)
        if config.parity_clients:
            from fedkeys.parity import ParityConfig, run_parity

            codecs = ("float32", config.codec) if config.codec != "float32" else ("float32",)
            what = f"one round deployed vs simulated per codec {codecs}, {config.parity_clients} clients"
            with run.phases.step("parity", what):
                results = {}
                for codec in codecs:
                    parity_config = ParityConfig(
                        clients=tuple(range(min(config.parity_clients, corpus.train.num_clients))),
                        population=f"parity-{codec}",
                        training=config.training.replace(
                            local_epochs=1, max_rows=min(config.max_rows, 16), codec=codec
                        ),
                    )
                    results[codec] = run_parity(
                        server.url, server.api_key, run.out / "plan", run.initial, run.data_dir, parity_config,
                        run.out / "parity" / codec,
                    ).to_dict()  # fmt: skip
                run.parity = results["float32"] | {"compressed": results.get(config.codec)}


def _evaluate(run: DemoRun) -> None:
    from fedkeys.demo_eval import WeightScorer
    from tff_sim.run_log import ScalarEvents

    config, corpus, model_config = run.config, run.need_corpus(), run.need_model_config()
    validation = WeightScorer(
        model_config, corpus.validation, config.seq_len, max_users=config.eval_users, seed=config.seed
    )
    test = WeightScorer(model_config, corpus.test, config.seq_len)
    versions = run.deployed_versions
    last = max(versions)
    chosen = sorted({v for v in versions if v % config.eval_every == 0} | {last})
    deployed_curve = {v: validation.score(versions[v], f"version {v}")["recall_at_1"] for v in chosen}
    sim_curve = {0: deployed_curve[0]}  # both start from the same pretrained weights
    sim_curve |= {r: validation.score(w, f"round {r}")["recall_at_1"] for r, w in sorted(run.sim_versions.items())}
    for folder, curve in ((run.out / "sim", sim_curve), (run.deployed_dir, deployed_curve)):
        events = ScalarEvents(folder / "tensorboard")  # the same users and evaluator for both, beside their logs
        for step, recall in sorted(curve.items()):
            events.add(step, {"val_recall_at_1": recall})
    run.scores = {
        "curves": {"simulation (TFF)": sim_curve, "deployment (devices)": deployed_curve},
        "validation_users": validation.users,
        "test": {
            f"{config.ngram_order}-gram": run.ngram["test"],
            "pretrained (proxy users)": test.score(run.initial, "pretrained"),
            "central (same tokens)": run.central["test"],
            f"simulation, {config.rounds} rounds": test.score(run.sim_versions[config.rounds], "simulation"),
            f"deployment, {last} rounds": test.score(versions[last], "deployment"),
        },
    }


STEPS: tuple[tuple[str, str, Callable[[DemoRun], None]], ...] = (
    ("prepare", "fetch and prepare the corpus, proxy users set aside", _prepare),
    ("ngram", "the n-gram reference", _ngram),
    ("pretrain", "central pretraining on the proxy users", _pretrain),
    ("simulation", "TFF FedAvg rounds from the pretrained model", _simulation),
    ("central", "the pretrained model trained centrally for the simulation's tokens", _central),
    ("export", "TFLite training plan of the pretrained model", _export),
    ("deployment", "coordinator, task and emulated phones over HTTP", _deployment),
    ("export-deployed", "TFLite plan of the deployed model, for suggest and phones", _export_deployed),
    ("evaluate", "validation recall per round, test metrics", _evaluate),
    ("report", "report.html with the plots, suggestions and timings", write_report),
)
"""The demo's steps in order: (name, what it does, the function of a DemoRun)."""


def run_demo(out: Path, config: DemoConfig, *, cache_dir: Path, progress: bool = True) -> str:
    """Run every step of ``STEPS`` into ``out``; return a printable summary pointing at ``out/report.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in _FRESH_EACH_RUN:  # a rerun into the same OUT starts a new coordinator and fleet
        shutil.rmtree(out / stale, ignore_errors=True)
    run = DemoRun(out=out, config=config, cache_dir=cache_dir, progress=progress)
    run.phases = phases = _Phases(len(STEPS) + (1 if config.parity_clients else 0))
    run.load_start = round(os.getloadavg()[0], 2)  # the machine may be shared: the report says how busy it was
    for name, what, step in STEPS:
        with phases.step(name, what):
            step(run)
    return run.report


def _run_fleet(
    out: Path, data_dir: Path, url: str, api_key: str, config: DemoConfig
) -> tuple[tuple[float, float], SimClock]:
    """The emulated fleet (``fedkeys.emulate``) until the task committed its rounds; ((emulated start, end), clock)."""
    from device_runtime import FleetConfig
    from device_runtime.emulator import EmulatorConfig
    from fedkeys.emulate import StopRule, emulate, log_status

    fleet = FleetConfig(availability=config.availability, dropout=config.dropout, concurrency=config.concurrency,
                        seed=config.seed)  # fmt: skip
    emulator = EmulatorConfig(population=POPULATION, state_dir=out / "devices", devices=config.devices, fleet=fleet,
                              shared_cache=True)  # fmt: skip
    stop = StopRule(rounds=config.rounds, duration=config.fleet_timeout_s)
    clock = SimClock(_START_UNIX, config.speedup)
    result = emulate(data_dir, url, emulator, clock, stop, api_key=api_key, on_update=log_status(config.devices))
    return (result.start, result.end), clock
