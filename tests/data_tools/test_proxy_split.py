"""The proxy split (users set aside as public data for pretraining) on disk and loaded back."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_tools import CorpusError, load_prepared


def test_load_prepared_proxy_users_are_disjoint_from_every_other_split(prepared_with_proxy: Path) -> None:
    corpus = load_prepared(prepared_with_proxy)
    assert corpus.proxy is not None and corpus.proxy.num_clients > 0
    splits = [corpus.train, corpus.validation, corpus.test, corpus.proxy]
    ids = [set(split.client_ids) for split in splits]
    assert sum(len(s) for s in ids) == len(set().union(*ids))
    assert corpus.split("proxy") is corpus.proxy
    assert corpus.stats["proxy_users"] == corpus.proxy.num_clients


def test_load_prepared_without_proxy_names_the_flag(prepared: Path) -> None:
    corpus = load_prepared(prepared)
    assert corpus.proxy is None and "proxy_users" not in corpus.stats
    with pytest.raises(CorpusError, match="--proxy-fraction"):
        corpus.split("proxy")
