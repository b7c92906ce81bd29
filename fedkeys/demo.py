"""``fedkeys demo``: from a fresh machine to a simulated and a deployed keyboard model, in one report.

The steps, each timed and announced (``demo [i/N]``):

1. fetch and prepare the corpus (Shakespeare, one client per play role, as in
   LEAF; a smaller vocabulary than ``data prepare``'s default keeps it fast);
2. the two references every federated result is judged against: a Kneser-Ney
   n-gram model and a short central training run;
3. a short TFF simulation of FedAvg (McMahan et al. 2017) from
   ``build_model(config, seed)``;
4. the on-device plan of the same initial model (``fedkeys export tflite``);
5. a coordinator (``fedkeys serve`` on SQLite, a child process) and its task;
6. a fleet of emulated phones (``fedkeys devices emulate``) training the plan in
   LiteRT over HTTP with diurnal availability for a few rounds (Bonawitz et
   al. 2019; Hard et al. 2018);
7. the parity check (``fedkeys.parity``): one float32 deployed round against
   one TFF round from the same weights;
8. scoring: validation recall against round for both, test metrics for all
   four models, a few suggestions, and ``report.html`` with the plots.

The coordinator child process and TFF's workers are always stopped, whatever
fails (``try``/``finally`` in their context managers).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from data_tools import PrepareConfig, load_prepared, prepare_corpus
from fedkeys.admin_client import AdminClient
from fedkeys.baselines import CentralRunConfig, NgramRunConfig, run_central, run_ngram
from fedkeys.demo_config import DemoConfig
from fedkeys.demo_coordinator import coordinator_process
from fedkeys.demo_fleet import fleet_activity
from fedkeys.report_html import render_report
from fedkeys.report_plots import plot_participation, plot_recall_by_round, plot_upload_bytes
from fedkeys.suggest import suggest
from model import CentralConfig

logger = logging.getLogger(__name__)

POPULATION = "keyboard"
SUGGEST_CONTEXTS = ("to be or not to", "my lord i", "what is the", "i pray you")
METRIC_KEYS = ("recall_at_1", "recall_at_3", "recall_at_1_no_oov", "perplexity")
_START_UNIX = 1_767_571_200.0  # Monday 2026-01-05 00:00 UTC: the emulated day starts at midnight UTC
_STEPS = 9
_FRESH_EACH_RUN = ("coordinator", "devices", "parity")
_CORPUS_KEYS = ("corpus", "users", "train_users", "validation_users", "test_users", "words", "vocab_size", "oov_rate")


class _Phases:
    """Announce each step and keep its wall time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        index = len(self.seconds) + 1
        logger.info("demo [%d/%d] %s: %s", index, _STEPS, name, what)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 1)
            logger.info("demo [%d/%d] %s done in %.1f s", index, _STEPS, name, self.seconds[name])

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 1)


def _prepare(out: Path, config: DemoConfig, cache_dir: Path, progress: bool) -> Path:
    if config.data is not None:
        return config.data
    data_dir = out / "data"
    stats = data_dir / "stats.json"
    if stats.is_file() and json.loads(stats.read_text()).get("vocab_size") == config.vocab_size:
        logger.info("demo: reusing the prepared corpus in %s", data_dir)
        return data_dir
    prepare = PrepareConfig(vocab_size=config.vocab_size, min_words=config.min_words)
    prepare_corpus(config.corpus, data_dir, prepare, cache_dir=cache_dir, progress=progress, overwrite=True)
    return data_dir


def run_demo(out: Path, config: DemoConfig, *, cache_dir: Path, progress: bool = True) -> str:
    """Run every step into ``out``; return a printable summary pointing at ``out/report.html``."""
    from fedkeys.demo_eval import WeightScorer, write_run_dir
    from fedkeys.demo_sim import simulate
    from fedkeys.export import ExportConfig, export_tflite
    from model import build_model, save_model
    from tff_sim.config import SimConfig
    from tff_sim.simulation import sim_model_config

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in _FRESH_EACH_RUN:  # a rerun into the same OUT starts a new coordinator and fleet
        shutil.rmtree(out / stale, ignore_errors=True)
    phases = _Phases()
    load_start = round(os.getloadavg()[0], 2)  # the machine may be shared: the report says how busy it was
    with phases.step("prepare", f"fetch and prepare {config.corpus}"):
        data_dir = _prepare(out, config, cache_dir, progress)
    corpus = load_prepared(data_dir)
    stats = json.loads((data_dir / "stats.json").read_text())
    tokenizer = data_dir / "tokenizer.model"

    with phases.step("ngram", f"{config.ngram_order}-gram Kneser-Ney reference"):
        ngram = run_ngram(data_dir, out / "ngram", NgramRunConfig(order=config.ngram_order), overwrite=True)
    steps = f"{config.central_epochs} epoch(s) of at most {config.central_max_steps} steps"
    with phases.step("central", f"central reference, {steps}"):
        central_run = CentralRunConfig(
            preset=config.preset,
            seq_len=config.seq_len,
            init_seed=config.seed,
            training=CentralConfig(max_epochs=config.central_epochs, max_steps_per_epoch=config.central_max_steps),
        )
        central = run_central(data_dir, out / "central", central_run, progress=progress, overwrite=True)
    references = {
        "central (validation)": float(central["validation"]["recall_at_1"]),
        f"{config.ngram_order}-gram (validation)": float(ngram["validation"]["recall_at_1"]),
    }

    model_config = sim_model_config(corpus.tokenizer.vocab_size, config.preset)
    initial_model = build_model(model_config, seed=config.seed)  # the start of both simulation and deployment
    initial = [np.asarray(w, np.float32) for w in initial_model.get_weights()]
    scored_rounds = {r for r in range(1, config.rounds + 1) if r % config.eval_every == 0} | {config.rounds}
    with phases.step("simulation", f"TFF FedAvg, {config.rounds} rounds of {config.clients_per_round} clients"):
        sim = SimConfig(
            algorithm="fedavg",
            rounds=config.rounds,
            clients_per_round=config.clients_per_round,
            local_epochs=config.local_epochs,
            client_lr=config.client_lr,
            batch_size=config.batch_size,
            seq_len=config.seq_len,
            max_client_rows=config.max_rows,
            preset=config.preset,
            seed=config.seed,
        )
        sim_rows, sim_versions = simulate(
            corpus.train, model_config, initial, sim, scored_rounds, out / "sim" / "logs", progress=progress
        )
        write_run_dir(out / "sim", model_config, sim_versions[config.rounds], tokenizer)
        (out / "sim" / "rounds.json").write_text(json.dumps(sim_rows, indent=1) + "\n")

    with phases.step("export", "TFLite training plan of the same initial model"):
        save_model(out / "initial" / "checkpoint", model_config, initial_model)
        (out / "initial" / "tokenizer.model").write_bytes(tokenizer.read_bytes())
        export_config = ExportConfig(
            batch_size=config.batch_size, seq_len=config.seq_len, learning_rate=config.client_lr
        )
        exported = export_tflite(out / "initial", out / "plan", export_config, overwrite=True)

    deployed_versions: dict[int, list[np.ndarray]] = {}
    parity: dict[str, Any] | None = None
    with coordinator_process(out / "coordinator") as server, AdminClient(server.url, server.api_key) as admin:
        logger.info("demo: coordinator at %s (status page %s/status, log %s)", server.url, server.url, server.log_path)
        with phases.step("task", "create the coordinator task from the plan"):
            admin.create_task(
                out / "plan",
                initial,
                population=POPULATION,
                goal_count=config.clients_per_round,
                over_selection=1.3,
                selection_seconds=90.0,  # the fleet needs ~20 s to start (TF import, 120 example stores)
                report_seconds=120.0,
                codec=config.codec,
                local_epochs=config.local_epochs,
                learning_rate=config.client_lr,
                max_rows=config.max_rows,
                max_rounds=config.rounds,
                seed=config.seed,
            )
        fleet = f"{config.devices} emulated phones ({config.availability}), {config.rounds} rounds over HTTP"
        with phases.step("fleet", fleet):
            fleet_span = _run_fleet(out, data_dir, server.url, server.api_key, config)
        status = admin.status(POPULATION)
        rounds = [r.model_dump() for r in sorted(admin.rounds(POPULATION), key=lambda r: r.round)]
        for version in range(status.model_version + 1):
            deployed_versions[version] = admin.model(POPULATION, version)
        if config.parity_clients:
            from fedkeys.parity import ParityConfig, run_parity

            with phases.step("parity", f"one float32 round deployed vs simulated, {config.parity_clients} clients"):
                parity_config = ParityConfig(
                    clients=tuple(range(min(config.parity_clients, corpus.train.num_clients))),
                    local_epochs=1,
                    learning_rate=config.client_lr,
                    max_rows=min(config.max_rows, 16),
                    data_seed=config.seed,
                )
                parity = run_parity(
                    server.url, server.api_key, out / "plan", initial, data_dir, parity_config, out / "parity"
                ).to_dict()

    def score() -> dict[str, Any]:
        validation = WeightScorer(
            model_config, corpus.validation, config.seq_len, max_users=config.eval_users, seed=config.seed
        )
        test = WeightScorer(model_config, corpus.test, config.seq_len)
        last = max(deployed_versions)
        chosen = sorted({v for v in deployed_versions if v % config.eval_every == 0} | {last})
        deployed_curve = {v: validation.score(deployed_versions[v], f"version {v}")["recall_at_1"] for v in chosen}
        sim_curve = {0: deployed_curve[0]}  # both start from the same weights
        sim_curve |= {r: validation.score(w, f"round {r}")["recall_at_1"] for r, w in sorted(sim_versions.items())}
        write_run_dir(out / "deployed", model_config, deployed_versions[last], tokenizer)
        return {
            "curves": {"simulation (TFF)": sim_curve, "deployment (devices)": deployed_curve},
            "validation_users": validation.users,
            "test": {
                "central": central["test"],
                f"{config.ngram_order}-gram": ngram["test"],
                f"simulation, {config.rounds} rounds": test.score(sim_versions[config.rounds], "simulation"),
                f"deployment, {last} rounds": test.score(deployed_versions[last], "deployment"),
            },
        }

    with phases.step("evaluate", "validation recall per round, test metrics"):
        scores = score()
    activity = fleet_activity(
        out / "devices", start=fleet_span[0], end=fleet_span[1], availability=config.availability, seed=config.seed
    )
    runs = {
        "central": out / "central",
        "n-gram": out / "ngram",
        "simulation": out / "sim",
        "deployment": out / "deployed",
    }
    suggestions = [(c, [suggest(run, c) for run in runs.values()]) for c in SUGGEST_CONTEXTS]
    plot_recall_by_round(out / "recall.png", scores["curves"], references)
    states = {int(r["round"]): str(r["state"]) for r in rounds}
    plot_upload_bytes(out / "upload_bytes.png", activity.upload_bytes_by_round, activity.uploads_by_round, states)
    plot_participation(
        out / "participation.png", activity.hours, activity.uploads_by_hour, activity.interrupted_by_hour,
        activity.eligible_fraction_by_hour, time.strftime("%a %H:%M UTC", time.gmtime(fleet_span[0])),
    )  # fmt: skip
    uploads = sum(activity.uploads_by_round.values())
    report: dict[str, Any] = {
        "corpus": {k: stats.get(k) for k in _CORPUS_KEYS},
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()},
        "test": scores["test"],
        "validation_recall_at_1_by_round": {k: {str(r): v for r, v in c.items()} for k, c in scores["curves"].items()},
        "references_validation_recall_at_1": references,
        "fleet": dataclasses.asdict(activity),
        "deployed_rounds": [
            {k: r[k] for k in ("round", "state", "assigned", "target", "received", "goal", "aborted")} for r in rounds
        ],
        "parity": parity,
        "export": exported,
        "simulation_rounds": sim_rows,
        "validation_users_scored": scores["validation_users"],
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "suggestions": {c: dict(zip(runs, words, strict=True)) for c, words in suggestions},
        "phases_s": phases.seconds,
    }
    report["wall_time_s"] = phases.total()
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    page = render_report(
        out,
        {
            "corpus_name": str(stats.get("corpus", config.corpus)),
            "corpus": stats,
            "preset": config.preset,
            "parameters": exported["parameters"],
            "wall_time_s": report["wall_time_s"],
            "metric_keys": METRIC_KEYS,
            "test_table": list(scores["test"].items()),
            "test_note": f"Central: {config.central_epochs} epoch(s) capped at {config.central_max_steps} steps "
            f"(a short reference, not converged). Simulation and deployment start from the same initial weights, "
            f"{config.clients_per_round} clients a round, {config.local_epochs} local epoch(s), client lr "
            f"{config.client_lr}, at most {config.max_rows} rows a client; deployment uses codec {config.codec}. "
            f"Vocabulary {config.vocab_size} words (smaller than data prepare's default, for time).",
            "recall_note": f"Every point is recall@1 on the same {scores['validation_users']} validation users "
            "(a fixed sample), scored by the same Keras evaluator; dotted lines are the references on all "
            "validation users. Round 0 is the shared initial model. The deployed fleet samples devices "
            "by availability and arrival, the simulation uniformly, so the curves agree in trend, not point for "
            "point (the parity section shows the exact agreement under identical clients).",
            "codec": config.codec,
            "mean_upload_bytes": sum(activity.upload_bytes_by_round.values()) / max(uploads, 1),
            "raw_bytes": 4 * int(exported["parameters"]),
            "fleet_note": f"{activity.devices} emulated phones ({config.availability} availability, dropout "
            f"{config.dropout}), {activity.emulated_hours} emulated hours at {config.speedup:g}x; the line is the "
            "share of phones idle, charging and on Wi-Fi (their local night), bars are sessions from the phones' "
            f"own event logs. Deployed rounds: {sum(st == 'committed' for st in states.values())} committed, "
            f"{sum(st == 'abandoned' for st in states.values())} abandoned (goal not reached in time).",
            "parity": parity,
            "suggestion_models": list(runs),
            "suggestions": suggestions,
            "phases": list(phases.seconds.items()),
            "load_note": f"Load average (1 min) {load_start} at the start and {report['load_average_1m']['end']} at "
            f"the end on {os.cpu_count()} CPUs: on a shared machine the times above include other work.",
            "settings": json.dumps(report["config"]),
        },
    )
    return _summary(report, page)


def _run_fleet(out: Path, data_dir: Path, url: str, api_key: str, config: DemoConfig) -> tuple[float, float]:
    """The emulated fleet (``fedkeys.emulate``) until the task committed its rounds; (emulated start, end)."""
    from device_runtime import FleetConfig, SimClock
    from device_runtime.emulator import EmulatorConfig
    from fedkeys.emulate import StopRule, emulate, log_status

    fleet = FleetConfig(availability=config.availability, dropout=config.dropout, concurrency=config.concurrency,
                        seed=config.seed)  # fmt: skip
    emulator = EmulatorConfig(population=POPULATION, state_dir=out / "devices", devices=config.devices, fleet=fleet,
                              shared_cache=True)  # fmt: skip
    stop = StopRule(rounds=config.rounds, duration=config.fleet_timeout_s)
    clock = SimClock(_START_UNIX, config.speedup)
    result = emulate(data_dir, url, emulator, clock, stop, api_key=api_key, on_update=log_status(config.devices))
    return result.start, result.end


def _summary(report: dict[str, Any], page: Path) -> str:
    lines = ["", f"fedkeys demo ({report['wall_time_s']} s): test users"]
    lines.append(f"{'':<28}" + "".join(f"{k:>20}" for k in METRIC_KEYS))
    for name, metrics in report["test"].items():
        lines.append(f"{name:<28}" + "".join(f"{float(metrics[k]):>20.4f}" for k in METRIC_KEYS))
    if report["parity"]:
        lines.append(f"parity: max |deployed - simulated| weight = {report['parity']['max_abs_diff']:.3g}")
    lines.append(f"report: {page}")
    return "\n".join(lines)
