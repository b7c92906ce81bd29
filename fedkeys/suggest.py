"""``fedkeys suggest``: the keyboard's three-word suggestion strip for a context.

``--model`` is a run directory (Keras checkpoint or n-gram) or an exported
``ART/infer.tflite`` (or ``train.tflite``), run through the standalone LiteRT
runtime as a phone would, with the tokenizer shipped next to it. When a
``manifest.json`` sits beside the model, every file's SHA-256 is checked first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools import BOS_ID, EOS_ID, PAD_ID, UNK_ID, WordTokenizer, words
from fedkeys.run_dir import CHECKPOINT_DIR, NGRAM_FILE, TOKENIZER_FILE, RunDirError

_SPECIALS = (("pad", PAD_ID), ("unk", UNK_ID), ("bos", BOS_ID), ("eos", EOS_ID))


def suggest(run: Path, text: str, k: int = 3) -> list[str]:
    """The ``k`` most likely next words after ``text`` by the model in ``run``.

    ``run`` is a run directory of ``central train``, ``ngram`` (or later the
    simulation). The context is normalized exactly as training text was.
    """
    run = Path(run)
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if run.suffix == ".tflite":
        return _litert_suggest(run, text, k)
    tokenizer_path = run / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise RunDirError(f"{run} is not a fedkeys run directory: {TOKENIZER_FILE} is missing")
    tokenizer = WordTokenizer(tokenizer_path)
    context = tokenizer.encode_words(words(text))  # (T,) word ids, <unk> for OOV
    if (run / NGRAM_FILE).is_file():
        from model import KneserNeyLM

        lm = KneserNeyLM.load(run / NGRAM_FILE)
        ids = [int(i) for i in lm.top_k([int(i) for i in context], k)]
    elif (run / CHECKPOINT_DIR).is_dir():
        ids = _neural_top_k(run / CHECKPOINT_DIR, context, k)
    else:
        raise RunDirError(f"{run} holds no model: neither {CHECKPOINT_DIR}/ nor {NGRAM_FILE}")
    return [tokenizer.id_to_word(int(i)) for i in ids]


def _neural_top_k(checkpoint: Path, context: np.ndarray, k: int) -> list[int]:
    from model import restore_model, top_k_words

    config, model = restore_model(checkpoint)
    ids = np.concatenate(([config.bos_id], context)).astype(np.int32)[np.newaxis, :]  # (1, T+1)
    logits = model(ids, training=False).numpy()[0, -1]  # (V,) scores for the next word
    return [int(i) for i in top_k_words(logits, k, config.special_ids)]


def _litert_suggest(model_path: Path, text: str, k: int) -> list[str]:
    """Top-k words by an exported TFLite model on LiteRT (no TensorFlow import)."""
    from device_runtime.litert_model import LiteRTPredictor
    from wire.manifest import MANIFEST_FILE, ManifestError, load_manifest

    art = model_path.parent
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such model file")
    tokenizer_path = art / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise RunDirError(f"{art} is not an exported artifact: {TOKENIZER_FILE} is missing beside {model_path.name}")
    config: dict[str, int] = {}
    if (art / MANIFEST_FILE).is_file():
        manifest = load_manifest(art, verify=True)  # ManifestError names a tampered file
        if model_path.name not in manifest.files:
            raise ManifestError(f"{model_path.name} is not listed in {art / MANIFEST_FILE}")
        config = manifest.model_config
    tokenizer = WordTokenizer(tokenizer_path)
    if config and tokenizer.sha256 != manifest.tokenizer_sha256:
        raise ManifestError(f"{tokenizer_path}: sha256 {tokenizer.sha256} is not the manifest's tokenizer_sha256")
    predictor = LiteRTPredictor(model_path)
    if predictor.vocab_size != tokenizer.vocab_size:
        raise RunDirError(
            f"{model_path} scores {predictor.vocab_size} ids but {tokenizer_path} has {tokenizer.vocab_size}"
        )
    bos = int(config.get("bos_id", BOS_ID))
    specials = [int(config.get(f"{name}_id", default)) for name, default in _SPECIALS]
    context = np.concatenate(([bos], tokenizer.encode_words(words(text)))).astype(np.int32)  # (T+1,)
    scores = predictor.infer(context)  # (V,)
    return [tokenizer.id_to_word(int(i)) for i in _top_k(scores, k, specials)]


def _top_k(scores: np.ndarray, k: int, special_ids: list[int]) -> np.ndarray:
    """The k best ids, specials excluded, ties to the lower id (as ``model.top_k_words``, without TF)."""
    masked = np.array(scores, dtype=np.float64, copy=True)
    masked[special_ids] = -np.inf
    return np.argsort(-masked, kind="stable")[:k]
