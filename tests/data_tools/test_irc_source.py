from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_tools.errors import BadLines, CorpusError
from data_tools.irc_source import irc_log_files, read_irc

DAY_ONE = """\
=== alice [~a@host.example] has joined #ubuntu
[09:19] <alice> hello, anyone here?
[09:20] <bob> alice: yes!
[09:20]  * bob waves
[09:21] <ubotu> bob: I don't know
[09:21] -spammer:#ubuntu- buy now
[09:21] (relay/#ubuntu) hello
[09:22] <brad[] > nick with a trailing space

[09:23] <carol>
"""

DAY_TWO = "[23:59] <alice> late night\n"


def _corpus(root: Path) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "train" / "2005-06-27.train-a.raw.txt").write_text(DAY_ONE, encoding="utf-8")
    (root / "dev" / "2005-06-28_12.raw.txt").write_text(DAY_TWO, encoding="utf-8")
    (root / "LICENSE-data.txt").write_text("not a log\n", encoding="utf-8")
    (root / "PROVENANCE.md").write_text("# about\n", encoding="utf-8")
    return root


def _epoch(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def test_irc_log_files_only_dated_txt_sorted(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "irc")
    names = [p.name for p in irc_log_files(root)]
    assert names == ["2005-06-28_12.raw.txt", "2005-06-27.train-a.raw.txt"]


def test_read_irc_skips_system_action_and_bot_lines(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "irc")
    examples = list(read_irc(root, BadLines()))
    assert [(e.user_id, e.text) for e in examples] == [
        ("alice", "late night"),
        ("alice", "hello, anyone here?"),
        ("bob", "alice: yes!"),
        ("brad[]", "nick with a trailing space"),
        ("carol", ""),
    ]
    assert [e.line for e in examples] == [1, 2, 3, 8, 10]


def test_read_irc_timestamp_is_file_date_plus_time_utc(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "irc")
    first, second = list(read_irc(root, BadLines()))[:2]
    assert first.timestamp == _epoch(2005, 6, 28, 23, 59)
    assert second.timestamp == _epoch(2005, 6, 27, 9, 19)


@pytest.mark.parametrize(
    "bad",
    [
        b"just some text",
        b"[9:19] <alice> short hour",
        b"[25:00] <alice> late",
        b"[10:00] <> x",
    ],
)
def test_read_irc_bad_line_names_file_and_line(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "2010-01-01.txt"
    path.write_bytes(b"[10:00] <a> fine\n=== system\n" + bad + b"\n")
    with pytest.raises(CorpusError) as info:
        list(read_irc(tmp_path, BadLines()))
    assert f"{path}, line 3" in str(info.value)


def test_read_irc_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "2010-01-01.txt"
    path.write_bytes(b"[10:00] <a> fine\n[10:01] <a> caf\xe9\n")
    with pytest.raises(CorpusError) as info:
        list(read_irc(tmp_path, BadLines()))
    assert f"{path}, line 2" in str(info.value)
    assert "UTF-8" in str(info.value)


def test_read_irc_skip_bad_counts(tmp_path: Path) -> None:
    path = tmp_path / "2010-01-01.txt"
    path.write_bytes(b"garbage\n[10:00] <a> fine\n[10:01] <a> caf\xe9\n")
    bad = BadLines(skip=True)
    assert [e.text for e in read_irc(tmp_path, bad)] == ["fine"]
    assert bad.count == 2


def test_read_irc_missing_dir_named(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such directory"):
        list(read_irc(tmp_path / "absent", BadLines()))


def test_read_irc_dir_without_logs_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="YYYY-MM-DD"):
        list(read_irc(tmp_path, BadLines()))


def test_read_irc_bad_date_in_file_name(tmp_path: Path) -> None:
    path = tmp_path / "2010-13-45.txt"
    path.write_text("[10:00] <a> hi\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="2010-13-45.txt"):
        list(read_irc(tmp_path, BadLines()))
