"""End to end: ``fedkeys export tflite`` and ``fedkeys suggest --model ART/*.tflite`` (fedkeys/export.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from data_tools import load_prepared
from device_runtime.litert_model import LiteRTPredictor, LiteRTTrainer
from fedkeys.cli import main
from model import load_checkpoint, make_sequences
from wire.manifest import MANIFEST_FILE, load_manifest
from wire.provenance import ModelProvenance, TrainedOn

B, T = 4, 8


@pytest.fixture(scope="module")
def run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "central"
    args = ["central", "train", "--data", str(prepared), "--out", str(out), "--model", "tiny"]
    assert main([*args, "--epochs", "3", "--learning-rate", "0.02", "--seq-len", str(T), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def art(run: Path) -> Path:
    out = run.parent / "art"
    args = ["export", "tflite", "--from", str(run), "--out", str(out), "--batch-size", str(B), "--seq-len", str(T)]
    assert main(args) == 0
    return out


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("fedkeys: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_export_tflite_writes_a_verified_plan(run: Path, art: Path) -> None:
    assert {p.name for p in art.iterdir()} == {MANIFEST_FILE, "infer.tflite", "tokenizer.model", "train.tflite"}
    manifest = load_manifest(art)  # every file's sha256 checks out
    config, weights = load_checkpoint(run / "checkpoint")
    assert manifest.model_config == config.to_dict()
    assert (manifest.batch_size, manifest.seq_len) == (B, T)
    assert [t.shape for t in manifest.tensors] == [w.shape for w in weights]
    assert {t.dtype for t in manifest.tensors} == {"float32"}
    assert manifest.tensors[0].name.startswith("embedding/embeddings")
    assert set(manifest.signatures) == {"train", "evaluate", "infer", "get_weights", "set_weights"}
    assert manifest.hyperparameters["learning_rate"] == 0.5
    assert manifest.hyperparameters["inference_quantization"] == "int8"
    assert manifest.tokenizer_sha256 == manifest.files["tokenizer.model"]
    assert not list(art.parent.glob(".art.tmp-*"))  # staged, then renamed
    trainer = LiteRTTrainer.from_plan(art)
    for ours, theirs in zip(trainer.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_export_tflite_records_where_the_model_came_from(run: Path, art: Path, prepared: Path) -> None:
    train = load_prepared(prepared).train
    assert load_manifest(art).provenance == ModelProvenance(
        run=str(run),
        kind="central",
        rounds=0,  # trained centrally: no federated round
        trained_on=TrainedOn(str(prepared), "train", train.num_clients, int(train.num_tokens)),
        init_from=None,
        pretrained_on=None,
    )


def test_suggest_through_litert_matches_the_run_dir(run: Path, art: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    shown = {}
    for model in (run, art / "train.tflite", art / "infer.tflite"):
        assert main(["suggest", "--model", str(model), "--words-only", "see you at"]) == 0
        shown[model.name] = capsys.readouterr().out.strip()
    assert len(shown["central"].split(" | ")) == 3
    assert shown["train.tflite"] == shown["central"]  # float32 on LiteRT: the same strip as Keras
    assert shown["infer.tflite"].split(" | ")[0] == shown["central"].split(" | ")[0]


def test_suggest_cli_shows_probabilities_and_reads_contexts_from_stdin(
    art: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    capsys.readouterr()
    assert main(["suggest", "--model", str(art / "infer.tflite"), "see you zorpish"]) == 0
    out = capsys.readouterr().out
    assert out.count("%") == 3 and "zorpish" in out  # three words with their probabilities, the unknown word named
    monkeypatch.setattr("sys.stdin", io.StringIO("see you at\nwhat time is\n"))
    assert main(["suggest", "--model", str(art / "infer.tflite"), "-i"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "%" in line]
    assert len(lines) == 2


def test_export_int8_inference_agrees_with_float_on_test_positions(art: Path, prepared: Path) -> None:
    """Top-1 word (specials excluded) of the int8 model against the float32 one at every test position."""
    corpus = load_prepared(prepared)
    inputs, targets = make_sequences(corpus.test.all_examples(), T, bos_id=2, pad_id=0)
    quantized, reference = LiteRTPredictor(art / "infer.tflite"), LiteRTTrainer(art / "train.tflite")
    specials = [0, 1, 2, 3]
    agree = total = 0
    for row, target in zip(inputs, targets, strict=True):
        for end in range(1, int(np.sum(target != 0)) + 1):
            a, b = quantized.infer(row[:end]), reference.infer(row[:end])
            a[specials] = b[specials] = -np.inf
            agree += int(np.argmax(a) == np.argmax(b))
            total += 1
    assert total >= 100
    assert agree / total >= 0.99, f"int8 top-1 agreement {agree}/{total}"


def test_export_into_a_plan_of_another_config_is_refused(
    run: Path, art: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    shutil.copytree(art, other)
    manifest = json.loads((other / MANIFEST_FILE).read_text())
    manifest["model_config"]["units"] = 64
    (other / MANIFEST_FILE).write_text(json.dumps(manifest))
    args = ["export", "tflite", "--from", str(run), "--out", str(other), "--batch-size", "4", "--seq-len", "8"]
    assert main(args) == 2
    err = _one_line_error(capsys)
    assert "another model configuration" in err and "units: 64 -> 32" in err and "--overwrite" in err
    assert json.loads((other / MANIFEST_FILE).read_text()) == manifest  # nothing touched


def test_export_into_a_plan_of_another_shape_is_refused(
    run: Path, art: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (art / MANIFEST_FILE).read_bytes()
    assert main(["export", "tflite", "--from", str(run), "--out", str(art), "--batch-size", "8", "--seq-len", "8"]) == 2
    assert "(batch, seq_len) (4, 8), not (8, 8)" in _one_line_error(capsys)
    assert main(["export", "tflite", "--from", str(run), "--out", str(art), "--batch-size", "4", "--seq-len", "8"]) == 2
    assert "already exists" in _one_line_error(capsys)
    assert (art / MANIFEST_FILE).read_bytes() == before


def test_export_overwrite_replaces_the_plan(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "art"
    out.mkdir()
    (out / MANIFEST_FILE).write_text("{ not json")
    (out / "stale.bin").write_bytes(b"old")
    args = ["export", "tflite", "--from", str(run), "--out", str(out), "--batch-size", "2", "--seq-len", "4"]
    assert main(args) == 2
    assert "not valid JSON" in _one_line_error(capsys)
    assert main([*args, "--quantization", "float16", "--overwrite"]) == 0
    assert "infer_tflite_bytes" in capsys.readouterr().out
    manifest = load_manifest(out)
    assert (manifest.batch_size, manifest.seq_len) == (2, 4)
    assert manifest.hyperparameters["inference_quantization"] == "float16"
    assert not (out / "stale.bin").exists()


def test_suggest_refuses_a_tampered_artifact(art: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "art"
    shutil.copytree(art, copy)
    data = bytearray((copy / "infer.tflite").read_bytes())
    data[-10] ^= 0xFF
    (copy / "infer.tflite").write_bytes(bytes(data))
    assert main(["suggest", "--model", str(copy / "infer.tflite"), "see you"]) == 2
    err = _one_line_error(capsys)
    assert "infer.tflite: sha256" in err and "does not match" in err


def test_suggest_tflite_without_a_tokenizer_is_a_clear_error(
    art: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copyfile(art / "infer.tflite", tmp_path / "infer.tflite")
    assert main(["suggest", "--model", str(tmp_path / "infer.tflite"), "see you"]) == 2
    assert "tokenizer.model is missing" in _one_line_error(capsys)
    assert main(["suggest", "--model", str(tmp_path / "nope.tflite"), "see you"]) == 2
    assert "nope.tflite" in _one_line_error(capsys)


def test_export_from_a_run_without_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    assert main(["export", "tflite", "--from", str(tmp_path / "run"), "--out", str(tmp_path / "a")]) == 2
    assert "checkpoint/ is missing" in _one_line_error(capsys)
    assert not (tmp_path / "a").exists()


def test_export_checkpoint_of_another_vocabulary_than_its_tokenizer(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config_path = copy / "checkpoint" / "model_config.json"
    config = json.loads(config_path.read_text())
    config["vocab_size"] += 5
    config_path.write_text(json.dumps(config))
    assert main(["export", "tflite", "--from", str(copy), "--out", str(tmp_path / "a")]) == 2
    assert "the model's vocabulary is" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-size", "0", "argument --batch-size: must be at least 1, got 0"),
        ("--seq-len", "-1", "argument --seq-len: must be at least 1, got -1"),
        ("--client-lr", "nan", "argument --client-lr: must be a positive number, got nan"),
    ],
)
def test_export_bad_flags_are_clear_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert main(["export", "tflite", "--from", str(run), "--out", str(tmp_path / "a"), flag, value]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "a").exists()
