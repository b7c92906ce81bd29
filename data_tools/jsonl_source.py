"""Source ``jsonl:PATH``: users' own typing logs, one JSON object a line.

Each line is ``{"user_id": "...", "text": "...", "timestamp": ...}`` where
``timestamp`` is optional: a number (UTC epoch seconds) or an ISO-8601
string (a time without a zone is taken as UTC).  ``PATH`` ending in ``.gz``
is read through gzip.  Blank lines are ignored.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._lines import decode_lines
from ._progress import bar
from .errors import BadLines, CorpusError
from .records import RawExample

__all__ = ["parse_timestamp", "read_jsonl"]


def parse_timestamp(value: Any) -> float | None:
    """Turn a JSON timestamp into UTC epoch seconds (``None`` stays ``None``).

    Raises ValueError for anything else, including booleans and non-finite
    numbers, which are almost certainly export bugs.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if math.isfinite(seconds):
            return seconds
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise ValueError(f"bad timestamp {value!r} (expected finite epoch seconds or ISO-8601)")


def _problem(obj: Any) -> str | None:
    """What is wrong with one decoded JSON value, or None if it is a valid record."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    for field in ("user_id", "text"):
        value = obj.get(field)
        if not isinstance(value, str) or not value.strip():
            return f"{field!r} must be a non-empty string, got {value!r}"
    return None


def read_jsonl(path: Path, bad: BadLines, *, progress: bool = False) -> Iterator[RawExample]:
    """Yield the examples of a ``.jsonl`` (or ``.jsonl.gz``) file in file order."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    label = str(path)
    line = 0
    with (
        open(path, "rb") as raw,
        bar(
            total=path.stat().st_size,
            desc=f"reading {path.name}",
            unit="B",
            unit_scale=True,
            enabled=progress,
        ) as shown,
    ):
        stream: Iterable[bytes] = raw
        if path.suffix == ".gz":
            stream = gzip.GzipFile(fileobj=raw)
        position = 0
        try:
            for line, text in decode_lines(stream, label, bad):
                if raw.tell() != position:
                    shown.update(raw.tell() - position)
                    position = raw.tell()
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    bad.report(label, line, f"malformed JSON ({exc.msg}, column {exc.colno})")
                    continue
                problem = _problem(obj)
                if problem is None:
                    try:
                        timestamp = parse_timestamp(obj.get("timestamp"))
                    except ValueError as exc:
                        problem = str(exc)
                if problem is not None:
                    bad.report(label, line, problem)
                    continue
                yield RawExample(obj["user_id"], obj["text"], timestamp, label, line)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorpusError(f"{label}, line {line + 1}: cannot read ({exc})") from exc
