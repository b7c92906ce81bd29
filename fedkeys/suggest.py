"""``fedkeys suggest``: the keyboard's three-word suggestion strip for a context.

``--model`` is a run directory (Keras checkpoint or n-gram) or an exported
``ART/infer.tflite`` (or ``train.tflite``), run through the standalone LiteRT
runtime as a phone would, with the tokenizer shipped next to it (only numpy,
sentencepiece and LiteRT are imported on that path, never TensorFlow). When a
``manifest.json`` sits beside the model, every file's SHA-256 is checked first.

:func:`open_model` loads a model once into a :class:`Suggester`, whose
:meth:`Suggester.strip` gives the next words with their probabilities and the
context words the vocabulary does not know, and :func:`interact` answers one
context per line of a stream (the CLI passes stdin). :func:`model_warnings`
says when a model is untrained or context-blind (a unigram in disguise), the
failure a federated run that did not learn shows as ``the | and | i`` after
every context.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from data_tools.text import words
from data_tools.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, WordTokenizer
from fedkeys.run_dir import CHECKPOINT_DIR, NGRAM_FILE, TOKENIZER_FILE, RunDirError

_SPECIALS = (("pad", PAD_ID), ("unk", UNK_ID), ("bos", BOS_ID), ("eos", EOS_ID))

PROBE_CONTEXTS: tuple[str, ...] = ("", "i", "the", "thank you", "see you at", "what do you")
"""Fixed contexts on which :func:`model_warnings` judges a model: a language
model that uses its context ranks different words first after some of them."""

UNIFORM_ENTROPY_FRACTION = 0.9
"""A model whose mean next-word entropy over the probes is at least this share
of ``log(V)`` (the uniform distribution's) is called untrained: a trained word
LM is far below it (a unigram model of English text sits near 0.7)."""

_Scorer = Callable[[np.ndarray], np.ndarray]  # context ids (T,) without bos -> probabilities (V,)


@dataclasses.dataclass(frozen=True)
class Suggestion:
    word: str
    probability: float  # p(word | context) under the model, specials included in the normalization


@dataclasses.dataclass(frozen=True)
class Strip:
    """The suggestion strip for one context."""

    context: tuple[str, ...]  # the normalized context words, as the model read them
    unknown: tuple[str, ...]  # context words outside the vocabulary (read as <unk>), in order
    suggestions: tuple[Suggestion, ...]  # best first

    @property
    def words(self) -> list[str]:
        return [s.word for s in self.suggestions]


@dataclasses.dataclass(frozen=True)
class Suggester:
    """One loaded model and its tokenizer; build with :func:`open_model`."""

    source: Path
    tokenizer: WordTokenizer
    special_ids: tuple[int, ...]
    _scorer: _Scorer

    def probabilities(self, text: str) -> np.ndarray:
        """p(next word | text) over the vocabulary (V,), the text normalized as training text was."""
        return self._scorer(self.tokenizer.encode_words(words(text)))

    def strip(self, text: str, k: int = 3) -> Strip:
        """The ``k`` most likely next words after ``text``, with probabilities and the unknown context words."""
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        context = words(text)
        ids = self.tokenizer.encode_words(context)  # (T,) word ids, <unk> for OOV
        unknown = tuple(w for w, i in zip(context, ids.tolist(), strict=True) if i == UNK_ID)
        probs = self._scorer(ids)  # (V,)
        best = top_k_ids(probs, k, self.special_ids)
        ranked = tuple(Suggestion(self.tokenizer.id_to_word(int(i)), float(probs[i])) for i in best)
        return Strip(tuple(context), unknown, ranked)

    def warnings(self, k: int = 3) -> list[str]:
        """Why this model's suggestions should not be trusted (empty when none), from :data:`PROBE_CONTEXTS`."""
        probs = np.stack([self.probabilities(text) for text in PROBE_CONTEXTS])  # (P, V)
        return model_warnings(probs, self.special_ids, k)


def open_model(path: Path) -> Suggester:
    """Load the model at ``path``: a run directory, or an exported ``.tflite`` with its tokenizer beside it."""
    path = Path(path)
    if path.suffix == ".tflite":
        return _open_litert(path)
    tokenizer_path = path / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise RunDirError(f"{path} is not a fedkeys run directory: {TOKENIZER_FILE} is missing")
    tokenizer = WordTokenizer(tokenizer_path)
    specials = tuple(i for _, i in _SPECIALS)
    if (path / NGRAM_FILE).is_file():
        from model import KneserNeyLM

        lm = KneserNeyLM.load(path / NGRAM_FILE)
        return Suggester(path, tokenizer, specials, lambda ids: lm.next_word_probs([int(i) for i in ids]))
    if (path / CHECKPOINT_DIR).is_dir():
        return _open_keras(path, tokenizer)
    raise RunDirError(f"{path} holds no model: neither {CHECKPOINT_DIR}/ nor {NGRAM_FILE}")


def suggest(run: Path, text: str, k: int = 3) -> list[str]:
    """The ``k`` most likely next words after ``text`` by the model at ``run`` (see :func:`open_model`)."""
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    return open_model(run).strip(text, k).words


def format_strip(strip: Strip, *, probabilities: bool = True) -> str:
    """``home 41.2% | at 12.0% | the 5.1%``, then ``  (not in the vocabulary: zorp)`` when a word was unknown."""
    shown = " | ".join(f"{s.word} {100 * s.probability:.1f}%" if probabilities else s.word for s in strip.suggestions)
    if strip.unknown:
        shown += f"  (not in the vocabulary, read as <unk>: {', '.join(strip.unknown)})"
    return shown


def interact(suggester: Suggester, lines: Iterable[str], out: TextIO, k: int = 3, *, prompt: str = "") -> int:
    """Answer each line of ``lines`` (a context; empty for a sentence start) with its strip on ``out``.

    Ends at the end of ``lines`` (Ctrl-D on a terminal); returns how many contexts were answered.
    """
    answered = 0
    out.write(prompt)
    out.flush()
    for line in lines:
        out.write(format_strip(suggester.strip(line.rstrip("\n"), k)) + "\n" + prompt)
        out.flush()
        answered += 1
    return answered


def model_warnings(probs: np.ndarray, special_ids: Sequence[int], k: int = 3) -> list[str]:
    """Warnings about a model from its next-word distributions ``probs`` (P, V) after P different contexts.

    - *untrained*: mean entropy (specials excluded, renormalized) at least
      :data:`UNIFORM_ENTROPY_FRACTION` of ``log(V')``, V' the non-special words;
    - *context-blind*: the same top ``k`` words after every context, i.e. the
      model predicts word frequencies, not the next word (a run that has not
      learned past the unigram stage).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] < 2:
        raise ValueError(f"probs must be (P, V) with P >= 2 contexts, got shape {probs.shape}")
    words_only = np.delete(probs, list(special_ids), axis=1)  # (P, V')
    words_only = words_only / np.maximum(words_only.sum(axis=1, keepdims=True), 1e-300)
    logs = np.log(np.where(words_only > 0, words_only, 1.0))
    entropy = float(np.mean(-(words_only * logs).sum(axis=1)))
    uniform = math.log(words_only.shape[1])
    found = []
    if entropy >= UNIFORM_ENTROPY_FRACTION * uniform:
        found.append(
            f"the model looks untrained: its next-word entropy is {entropy:.2f} nats, "
            f"{entropy / uniform:.0%} of a uniform guess over {words_only.shape[1]} words"
        )
    tops = {tuple(top_k_ids(row, k, special_ids).tolist()) for row in probs}
    if len(tops) == 1:
        found.append(
            f"the model ignores its context: the same top {k} words after each of {probs.shape[0]} different "
            "contexts (it predicts word frequencies, not the next word; train longer or check the run)"
        )
    return found


def top_k_ids(scores: np.ndarray, k: int, special_ids: Sequence[int]) -> np.ndarray:
    """The k best ids, specials excluded, ties to the lower id (as ``model.top_k_words``, without TF)."""
    masked = np.array(scores, dtype=np.float64, copy=True)
    masked[list(special_ids)] = -np.inf
    return np.argsort(-masked, kind="stable")[:k]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities (V,) from scores (V,), computed stably in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum()
    return out


def _open_keras(run: Path, tokenizer: WordTokenizer) -> Suggester:
    from model import restore_model

    config, model = restore_model(run / CHECKPOINT_DIR)

    def score(context: np.ndarray) -> np.ndarray:
        ids = np.concatenate(([config.bos_id], context)).astype(np.int32)[np.newaxis, :]  # (1, T+1)
        return softmax(model(ids, training=False).numpy()[0, -1])  # (V,) for the next word

    return Suggester(run, tokenizer, tuple(int(i) for i in config.special_ids), score)


def _open_litert(model_path: Path) -> Suggester:
    """An exported TFLite model on LiteRT (no TensorFlow import)."""
    from device_runtime.litert_model import LiteRTPredictor
    from wire.manifest import MANIFEST_FILE, ManifestError, load_manifest

    art = model_path.parent
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such model file")
    tokenizer_path = art / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise RunDirError(f"{art} is not an exported artifact: {TOKENIZER_FILE} is missing beside {model_path.name}")
    config: dict[str, int] = {}
    tokenizer = WordTokenizer(tokenizer_path)
    if (art / MANIFEST_FILE).is_file():
        manifest = load_manifest(art, verify=True)  # ManifestError names a tampered file
        if model_path.name not in manifest.files:
            raise ManifestError(f"{model_path.name} is not listed in {art / MANIFEST_FILE}")
        config = manifest.model_config
        if tokenizer.sha256 != manifest.tokenizer_sha256:
            raise ManifestError(f"{tokenizer_path}: sha256 {tokenizer.sha256} is not the manifest's tokenizer_sha256")
    predictor = LiteRTPredictor(model_path, scan_custom_ops=False)  # no TensorFlow here: LiteRT refuses Flex ops
    if predictor.vocab_size != tokenizer.vocab_size:
        raise RunDirError(
            f"{model_path} scores {predictor.vocab_size} ids but {tokenizer_path} has {tokenizer.vocab_size}"
        )
    bos = int(config.get("bos_id", BOS_ID))
    specials = tuple(int(config.get(f"{name}_id", default)) for name, default in _SPECIALS)

    def score(context: np.ndarray) -> np.ndarray:
        return softmax(predictor.infer(np.concatenate(([bos], context)).astype(np.int32)))  # (V,)

    return Suggester(model_path, tokenizer, specials, score)
