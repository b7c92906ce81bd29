"""Word-level SentencePiece tokenizer: one token id per whole word.

The keyboard suggests whole words and its metrics are word-level, so the
vocabulary is the most frequent words of the *training* users (held-out
users' words must not leak into it, or the OOV rate would be optimistic).
SentencePiece's ``word`` model is used instead of a hand-rolled dict so the
same ``tokenizer.model`` file can be shipped to phones and read by the
standard runtime there; its SHA-256 goes into device manifests.

Special ids are fixed: ``PAD_ID=0``, ``UNK_ID=1``, ``BOS_ID=2``,
``EOS_ID=3``.  Input to the tokenizer is always text normalized by
:func:`data_tools.text.words` and joined with single spaces.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import sentencepiece as spm

from ._progress import bar
from .text import words as normalize_words

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "WORD_MARKER",
    "WordTokenizer",
    "train_tokenizer",
]

logger = logging.getLogger(__name__)

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
WORD_MARKER = "\u2581"
"""SentencePiece's word-start marker; every word piece begins with it."""

_MAX_SENTENCE_BYTES = 1 << 20
# The trainer options, thread count included, are stored in the model file;
# fixing them keeps the file (and its SHA-256) identical on every machine.
# Counting words is fast: ~2 s for 2.3M words on one thread.
_TRAIN_THREADS = 1


class WordTokenizer:
    """A trained ``tokenizer.model``: words <-> int32 ids.

    Encoding looks every word up on its own (``▁word`` piece, else
    ``UNK_ID``) instead of calling SentencePiece's ``encode``: that one
    merges a run of consecutive unknown words into a single ``<unk>``,
    which would break the one-id-per-word contract the model relies on.
    Devices must look words up the same way.
    """

    __slots__ = ("_sp", "_vocab", "path", "sha256")

    def __init__(self, path: Path) -> None:
        data = Path(path).read_bytes()
        self.path = Path(path)
        self.sha256: str = hashlib.sha256(data).hexdigest()
        """Hex SHA-256 of the model file, for device manifests."""
        self._sp = spm.SentencePieceProcessor(model_proto=data)
        ids = (
            self._sp.pad_id(),
            self._sp.unk_id(),
            self._sp.bos_id(),
            self._sp.eos_id(),
        )
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(
                f"{path}: special ids (pad, unk, bos, eos) are {ids}, expected {(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}"
            )
        pieces = (self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size()))
        self._vocab: dict[str, int] = {
            piece.removeprefix(WORD_MARKER): i
            for i, piece in enumerate(pieces)
            if piece.startswith(WORD_MARKER) and len(piece) > 1
        }

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (ids are ``0..vocab_size-1``)."""
        return int(self._sp.get_piece_size())

    @property
    def special_ids(self) -> frozenset[int]:
        """The pad, unk, bos and eos ids."""
        return frozenset({PAD_ID, UNK_ID, BOS_ID, EOS_ID})

    def encode(self, texts: Sequence[str]) -> list[npt.NDArray[np.int32]]:
        """Normalize each raw text with ``words()`` and map its words to ids."""
        return [self.encode_words(normalize_words(text)) for text in texts]

    def encode_normalized(self, sentences: Sequence[str]) -> list[npt.NDArray[np.int32]]:
        """Encode sentences that are already ``" ".join(words(text))``."""
        return [self.encode_words(s.split(" ") if s else []) for s in sentences]

    def encode_words(self, words: Sequence[str]) -> npt.NDArray[np.int32]:
        """Ids of already normalized words, exactly one id per word (unk if unknown)."""
        lookup = self._vocab.get
        return np.fromiter((lookup(w, UNK_ID) for w in words), dtype=np.int32, count=len(words))

    def id_to_word(self, token_id: int) -> str:
        """The word for an id, without the ``▁`` marker (``<unk>`` etc. for specials)."""
        if not 0 <= token_id < self.vocab_size:
            raise IndexError(f"token id {token_id} out of range [0, {self.vocab_size})")
        piece: str = self._sp.id_to_piece(int(token_id))
        return piece.removeprefix(WORD_MARKER)

    def __repr__(self) -> str:
        return f"WordTokenizer({str(self.path)!r}, vocab_size={self.vocab_size})"


def _sample(sentences: Sequence[str], limit: int, seed: int) -> Sequence[str]:
    """At most ``limit`` sentences, picked with ``seed``, in original order."""
    if len(sentences) <= limit:
        return sentences
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(sentences), size=limit, replace=False))
    return [sentences[i] for i in keep]


def train_tokenizer(
    sentences: Sequence[str],
    model_path: Path,
    *,
    vocab_size: int,
    seed: int,
    max_sentences: int,
    progress: bool = False,
) -> WordTokenizer:
    """Train a word-level SentencePiece model on normalized sentences.

    ``sentences`` are words joined by single spaces (one example each).
    Sampling, when there are more than ``max_sentences``, is done here with
    ``seed`` so SentencePiece itself never shuffles and training is
    deterministic.  ``hard_vocab_limit=False`` lets a small corpus yield a
    smaller vocabulary instead of failing.
    """
    chosen = _sample(sentences, max_sentences, seed)

    def feed() -> Iterator[str]:
        with bar(total=len(chosen), desc="training tokenizer", unit="sent", enabled=progress) as shown:
            for i, sentence in enumerate(chosen, start=1):
                yield sentence
                if i % 4096 == 0:
                    shown.update(4096)
            shown.update(len(chosen) % 4096)

    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=feed(),
        model_writer=writer,
        model_type="word",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_piece="<pad>",
        unk_piece="<unk>",
        bos_piece="<s>",
        eos_piece="</s>",
        input_sentence_size=0,
        shuffle_input_sentence=False,
        max_sentence_length=_MAX_SENTENCE_BYTES,
        num_threads=_TRAIN_THREADS,
        minloglevel=2,
    )
    Path(model_path).write_bytes(writer.getvalue())
    tokenizer = WordTokenizer(Path(model_path))
    logger.info("trained tokenizer: %d ids from %d sentences", tokenizer.vocab_size, len(chosen))
    return tokenizer
