import hashlib
from pathlib import Path

import numpy as np
import pytest

from data_tools.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    WordTokenizer,
    train_tokenizer,
)

SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "don't panic it's 42",
    "the end",
]


def _train(path: Path, vocab_size: int = 100) -> WordTokenizer:
    return train_tokenizer(SENTENCES, path, vocab_size=vocab_size, seed=0, max_sentences=1000)


def test_train_tokenizer_special_ids_fixed(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model")
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tokenizer.special_ids == frozenset({0, 1, 2, 3})
    assert [tokenizer.id_to_word(i) for i in range(4)] == [
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
    ]


def test_train_tokenizer_small_corpus_gives_smaller_vocab(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model", vocab_size=10_000)
    distinct = {w for s in SENTENCES for w in s.split()}
    assert tokenizer.vocab_size == len(distinct) + 4


def test_train_tokenizer_caps_vocab_at_most_frequent(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model", vocab_size=8)
    assert tokenizer.vocab_size == 8
    assert tokenizer.id_to_word(4) == "the"


def test_word_tokenizer_round_trip_whole_words(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model")
    ids = tokenizer.encode(["The CAT sat, on the mat!"])[0]
    assert ids.dtype == np.int32
    assert [tokenizer.id_to_word(int(i)) for i in ids] == [
        "the",
        "cat",
        "sat",
        "on",
        "the",
        "mat",
    ]
    assert not set(ids.tolist()) & tokenizer.special_ids


def test_word_tokenizer_apostrophes_are_one_word(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model")
    ids = tokenizer.encode(["Don\u2019t panic"])[0]
    assert [tokenizer.id_to_word(int(i)) for i in ids] == ["don't", "panic"]


def test_word_tokenizer_each_unknown_word_gets_own_unk(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model")
    ids = tokenizer.encode(["the zebra quokka cat"])[0]
    assert ids.tolist()[1:3] == [UNK_ID, UNK_ID]
    assert len(ids) == 4


def test_word_tokenizer_encode_matches_encode_words(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model")
    sentence = ["a", "dog", "sat", "unseen", "42"]
    from_words = tokenizer.encode_words(sentence)
    assert from_words.dtype == np.int32
    assert from_words.tolist() == tokenizer.encode([" ".join(sentence)])[0].tolist()
    assert tokenizer.encode_normalized([" ".join(sentence), ""])[1].size == 0


def test_word_tokenizer_sha256_is_file_hash(tmp_path: Path) -> None:
    path = tmp_path / "tok.model"
    tokenizer = _train(path)
    assert tokenizer.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert WordTokenizer(path).sha256 == tokenizer.sha256


def test_train_tokenizer_deterministic(tmp_path: Path) -> None:
    _train(tmp_path / "a.model")
    _train(tmp_path / "b.model")
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()


def test_train_tokenizer_sampling_seeded(tmp_path: Path) -> None:
    many = [f"word{i} common" for i in range(200)]
    train_tokenizer(many, tmp_path / "a.model", vocab_size=500, seed=1, max_sentences=50)
    train_tokenizer(many, tmp_path / "b.model", vocab_size=500, seed=1, max_sentences=50)
    c = train_tokenizer(many, tmp_path / "c.model", vocab_size=500, seed=2, max_sentences=50)
    assert (tmp_path / "a.model").read_bytes() == (tmp_path / "b.model").read_bytes()
    assert c.vocab_size == 4 + 1 + 50
    assert (tmp_path / "a.model").read_bytes() != (tmp_path / "c.model").read_bytes()


def test_word_tokenizer_id_out_of_range(tmp_path: Path) -> None:
    tokenizer = _train(tmp_path / "tok.model")
    with pytest.raises(IndexError):
        tokenizer.id_to_word(tokenizer.vocab_size)
