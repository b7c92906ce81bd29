from pathlib import Path

from data_tools.corpus_stats import plot_words_per_user, words_per_user_quantiles


def test_words_per_user_quantiles_keys_and_values() -> None:
    stats = words_per_user_quantiles(list(range(1, 101)))
    assert list(stats) == ["p10", "p25", "p50", "p75", "p90", "p99", "max"]
    assert stats["p50"] == 50.5
    assert stats["max"] == 100.0


def test_words_per_user_quantiles_empty_is_zero() -> None:
    assert set(words_per_user_quantiles([]).values()) == {0.0}


def test_plot_words_per_user_writes_png(tmp_path: Path) -> None:
    path = tmp_path / "hist.png"
    plot_words_per_user([1, 5, 20, 300, 4000], path, corpus="jsonl:x", min_words=20)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
