"""The suggestion strip (fedkeys/suggest.py): probabilities, unknown words, interactive mode, warnings, LiteRT."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fresh_interpreter import run_fresh

from fedkeys.cli import main
from fedkeys.suggest import (
    Strip,
    Suggestion,
    format_strip,
    interact,
    model_warnings,
    open_model,
    softmax,
    suggest,
    top_k_ids,
)

SPECIALS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def ngram(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suggest") / "ngram"
    assert main(["ngram", "--data", str(prepared), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def untrained_art(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``infer.tflite`` of a freshly initialized tiny model (what a run that never trained exports)."""
    from data_tools import WordTokenizer
    from fedkeys.demo_eval import write_run_dir
    from fedkeys.export import ExportConfig, export_tflite
    from model import ModelConfig, build_model

    root = tmp_path_factory.mktemp("untrained")
    vocab = WordTokenizer(prepared / "tokenizer.model").vocab_size
    config = ModelConfig.from_preset("tiny", vocab)
    weights = [w.numpy() for w in build_model(config).weights]
    run = write_run_dir(root / "run", config, weights, prepared / "tokenizer.model")
    export_tflite(run, root / "art", ExportConfig(batch_size=2, seq_len=8))
    return root / "art"


def _peaked(best: int, v: int = 10) -> np.ndarray:
    probs = np.full(v, 0.01)
    probs[best] = 1.0 - 0.01 * (v - 1)
    return probs


def test_model_warnings_uniform_model_is_untrained_and_context_blind() -> None:
    found = model_warnings(np.full((3, 10), 0.1), SPECIALS)
    assert len(found) == 2
    assert found[0] == (
        "the model looks untrained: its next-word entropy is 1.79 nats, 100% of a uniform guess over 6 words"
    )
    assert found[1].startswith("the model ignores its context: the same top 3 words after each of 3 different")


def test_model_warnings_same_top_words_everywhere_is_context_blind_only() -> None:
    found = model_warnings(np.stack([_peaked(5), _peaked(5)]), SPECIALS, k=1)
    assert len(found) == 1 and found[0].startswith("the model ignores its context: the same top 1 words")


def test_model_warnings_context_dependent_peaked_model_has_none() -> None:
    assert model_warnings(np.stack([_peaked(5), _peaked(7)]), SPECIALS, k=1) == []


def test_model_warnings_ignores_specials_when_ranking() -> None:
    a, b = _peaked(0), _peaked(0)  # the mass sits on pad, which is never suggested
    a[4], b[5] = 0.02, 0.02
    found = model_warnings(np.stack([a, b]), SPECIALS, k=1)  # tops differ: 4 vs 5
    assert not any("ignores its context" in f for f in found)


def test_model_warnings_refuses_a_single_context() -> None:
    with pytest.raises(ValueError, match=r"P >= 2 contexts, got shape \(1, 10\)"):
        model_warnings(np.full((1, 10), 0.1), SPECIALS)


def test_top_k_ids_excludes_specials_and_breaks_ties_to_lower_id() -> None:
    assert top_k_ids(np.array([9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 2.0]), 3, SPECIALS).tolist() == [5, 6, 4]


def test_softmax_of_large_logits_is_finite_and_exact() -> None:
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0 + np.log(3.0)])), [0.25, 0.75])


def test_format_strip_shows_percent_and_unknown_words() -> None:
    strip = Strip(("see", "zorp"), ("zorp",), (Suggestion("home", 0.4123), Suggestion("at", 0.05)))
    assert format_strip(strip) == "home 41.2% | at 5.0%  (not in the vocabulary, read as <unk>: zorp)"
    assert format_strip(strip, probabilities=False) == "home | at  (not in the vocabulary, read as <unk>: zorp)"


def test_strip_ngram_marks_oov_and_gives_probabilities(ngram: Path) -> None:
    suggester = open_model(ngram)
    strip = suggester.strip("see you at", 3)
    assert strip.unknown == ()
    assert strip.words[0] == "home"
    probs = [s.probability for s in strip.suggestions]
    assert probs == sorted(probs, reverse=True) and 0.5 < probs[0] <= 1.0
    assert suggester.strip("see zorpy at", 3).unknown == ("zorpy",)
    assert suggest(ngram, "see you at") == strip.words  # the old entry point, unchanged


def test_interact_answers_every_line_until_the_end(ngram: Path) -> None:
    out = io.StringIO()
    assert interact(open_model(ngram), io.StringIO("see you at\nqwzx\n"), out, k=1, prompt="> ") == 2
    lines = out.getvalue().split("\n")
    assert lines[0].startswith("> home ")
    assert lines[1].endswith("(not in the vocabulary, read as <unk>: qwzx)")
    assert lines[2] == "> "


def test_trained_ngram_has_no_warnings(ngram: Path) -> None:
    assert open_model(ngram).warnings() == []


def test_untrained_tflite_is_flagged_untrained(untrained_art: Path) -> None:
    found = open_model(untrained_art / "infer.tflite").warnings()
    assert found and found[0].startswith("the model looks untrained")


def test_tflite_suggest_never_imports_tensorflow(untrained_art: Path) -> None:
    script = (
        "from fedkeys.suggest import open_model\n"
        f"s = open_model({str(untrained_art / 'infer.tflite')!r})\n"
        "strip = s.strip('see you', 3)\n"
        "w = s.warnings()\n"
        "print(len(strip.words))\n"
    )
    run = run_fresh(script, watch=("tensorflow", "keras", "tensorflow_federated"))
    assert [run.stdout.strip().splitlines()[-1], run.imported] == ["3", []]


def test_cli_suggest_on_tflite_imports_neither_tensorflow_nor_the_http_stack(untrained_art: Path) -> None:
    """`fedkeys suggest --model ART/infer.tflite` loads the tokenizer and LiteRT only (a cold start in well
    under a second on an idle machine; the timing is bench/suggest_latency.py's, not a test's)."""
    model = str(untrained_art / "infer.tflite")
    script = (
        f"from fedkeys.cli import main\nprint(main(['suggest', '--model', {model!r}, '--words-only', 'see you']))\n"
    )
    heavy = ("tensorflow", "tensorflow_federated", "keras", "httpx", "pydantic", "secagg", "tqdm")
    run = run_fresh(script, watch=heavy)
    strip, code = run.stdout.strip().splitlines()[-2:]
    assert [code, run.imported] == ["0", []]
    assert len(strip.split(" | ")) == 3  # the strip was printed: three words
