"""``fedkeys suggest``: the keyboard's three-word suggestion strip for a context."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools import WordTokenizer, words
from fedkeys.run_dir import CHECKPOINT_DIR, NGRAM_FILE, TOKENIZER_FILE, RunDirError


def suggest(run: Path, text: str, k: int = 3) -> list[str]:
    """The ``k`` most likely next words after ``text`` by the model in ``run``.

    ``run`` is a run directory of ``central train``, ``ngram`` (or later the
    simulation). The context is normalized exactly as training text was.
    """
    run = Path(run)
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
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
