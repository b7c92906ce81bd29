from pathlib import Path

import pytest

from data_tools.corpus_spec import (
    IrcSpec,
    JsonlSpec,
    ShakespeareSpec,
    parse_corpus_spec,
)
from data_tools.errors import CorpusError


def test_parse_corpus_spec_shakespeare() -> None:
    spec = parse_corpus_spec("shakespeare")
    assert spec == ShakespeareSpec()
    assert spec.label == "shakespeare"


def test_parse_corpus_spec_jsonl_path() -> None:
    spec = parse_corpus_spec("jsonl:data/logs.jsonl.gz")
    assert spec == JsonlSpec(Path("data/logs.jsonl.gz"))
    assert spec.label == "jsonl:logs.jsonl.gz"
    assert str(spec) == "jsonl:data/logs.jsonl.gz"


def test_parse_corpus_spec_irc_dir() -> None:
    spec = parse_corpus_spec("irc:/corpora/irc")
    assert spec == IrcSpec(Path("/corpora/irc"))
    assert spec.label == "irc:irc"


@pytest.mark.parametrize("bad", ["", "gutenberg", "jsonl:", "irc", "csv:a.csv", "Shakespeare"])
def test_parse_corpus_spec_unknown_lists_accepted_forms(bad: str) -> None:
    with pytest.raises(CorpusError) as info:
        parse_corpus_spec(bad)
    message = str(info.value)
    assert "shakespeare" in message and "jsonl:PATH" in message and "irc:DIR" in message
