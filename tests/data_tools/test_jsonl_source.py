import gzip
import json
import math
from pathlib import Path

import pytest

from data_tools.errors import BadLines, CorpusError
from data_tools.jsonl_source import parse_timestamp, read_jsonl

GOOD: list[dict[str, object]] = [
    {"user_id": "alice", "text": "Hello there", "timestamp": 1700000000},
    {"user_id": "bob", "text": "hi", "timestamp": "2023-11-14T22:13:20Z"},
    {"user_id": "alice", "text": "bye now"},
    {"user_id": "bob", "text": "naive time", "timestamp": "2023-11-14T22:13:20"},
    {"user_id": "carol", "text": "null time", "timestamp": None},
]


def _write(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


def _good_lines() -> list[str | bytes]:
    lines: list[str | bytes] = [json.dumps(obj) for obj in GOOD]
    lines.insert(2, "   ")
    return lines


def test_read_jsonl_valid_lines_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "logs.jsonl", _good_lines())
    examples = list(read_jsonl(path, BadLines()))
    assert [(e.user_id, e.text) for e in examples] == [(o["user_id"], o["text"]) for o in GOOD]
    assert [e.line for e in examples] == [1, 2, 4, 5, 6]
    assert examples[0].timestamp == 1700000000.0
    assert examples[1].timestamp == 1700000000.0
    assert examples[3].timestamp == 1700000000.0
    assert examples[2].timestamp is None and examples[4].timestamp is None
    assert examples[0].source == str(path)


def test_read_jsonl_gzip_same_as_plain(tmp_path: Path) -> None:
    plain = _write(tmp_path / "logs.jsonl", _good_lines())
    packed = tmp_path / "logs.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    as_plain = [(e.user_id, e.text, e.timestamp, e.line) for e in read_jsonl(plain, BadLines())]
    as_gz = [(e.user_id, e.text, e.timestamp, e.line) for e in read_jsonl(packed, BadLines())]
    assert as_gz == as_plain


BAD_LINES: list[tuple[str, bytes]] = [
    ("malformed JSON", b'{"user_id": "a", "text": '),
    ("JSON object", b'["a", "b"]'),
    ("user_id", b'{"text": "hi"}'),
    ("user_id", b'{"user_id": "  ", "text": "hi"}'),
    ("user_id", b'{"user_id": 7, "text": "hi"}'),
    ("text", b'{"user_id": "a"}'),
    ("text", b'{"user_id": "a", "text": ""}'),
    ("text", b'{"user_id": "a", "text": ["hi"]}'),
    ("timestamp", b'{"user_id": "a", "text": "hi", "timestamp": "yesterday"}'),
    ("timestamp", b'{"user_id": "a", "text": "hi", "timestamp": true}'),
    ("timestamp", b'{"user_id": "a", "text": "hi", "timestamp": NaN}'),
    ("timestamp", b'{"user_id": "a", "text": "hi", "timestamp": {"s": 1}}'),
    ("UTF-8", b'{"user_id": "a", "text": "caf\xe9"}'),
]


@pytest.mark.parametrize(("reason", "bad"), BAD_LINES)
def test_read_jsonl_bad_line_names_file_and_line(tmp_path: Path, reason: str, bad: bytes) -> None:
    path = _write(tmp_path / "logs.jsonl", [json.dumps(GOOD[0]), "", bad, json.dumps(GOOD[1])])
    with pytest.raises(CorpusError) as info:
        list(read_jsonl(path, BadLines()))
    message = str(info.value)
    assert f"{path}, line 3" in message
    assert reason in message


def test_read_jsonl_skip_bad_counts_lines(tmp_path: Path) -> None:
    lines: list[str | bytes] = [json.dumps(GOOD[0]), *(bad for _, bad in BAD_LINES)]
    path = _write(tmp_path / "logs.jsonl", [*lines, json.dumps(GOOD[1])])
    bad = BadLines(skip=True)
    examples = list(read_jsonl(path, bad))
    assert [e.user_id for e in examples] == ["alice", "bob"]
    assert bad.count == len(BAD_LINES)
    assert len(bad.examples) == 5
    assert f"{path}, line 2" in bad.examples[0]


def test_read_jsonl_missing_file_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(CorpusError, match="nope.jsonl"):
        list(read_jsonl(path, BadLines()))


def test_read_jsonl_corrupt_gzip_named(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"user_id": "a", "text": "hi"}\n' * 50)[:-30])
    with pytest.raises(CorpusError) as info:
        list(read_jsonl(path, BadLines()))
    assert str(path) in str(info.value)
    assert "line" in str(info.value)


def test_parse_timestamp_accepts_numbers_and_iso() -> None:
    assert parse_timestamp(1.5) == 1.5
    assert parse_timestamp("1970-01-01T00:00:10+00:00") == 10.0
    assert parse_timestamp("1970-01-01T01:00:10+01:00") == 10.0
    assert parse_timestamp(None) is None


@pytest.mark.parametrize("value", [math.inf, False, "", "10", [1], 10**400])
def test_parse_timestamp_rejects_bad_values(value: object) -> None:
    with pytest.raises(ValueError, match="bad timestamp"):
        parse_timestamp(value)
