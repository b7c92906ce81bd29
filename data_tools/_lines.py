"""Decode byte lines one at a time so an encoding error can name its line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .errors import BadLines

__all__ = ["decode_lines"]


def decode_lines(raw_lines: Iterable[bytes], path: str, bad: BadLines) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` with line endings (and a BOM) removed.

    Reading bytes and decoding per line, instead of opening the file in text
    mode, lets a non-UTF-8 byte be reported with its line number.
    """
    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.report(path, number, f"not valid UTF-8 (byte {exc.start}: {exc.reason})")
            continue
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield number, text.rstrip("\r\n")
