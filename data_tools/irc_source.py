"""Source ``irc:DIR``: IRC channel logs, one client per nick.

Files are ``*.txt`` anywhere under ``DIR`` whose name starts with the date,
``YYYY-MM-DD`` (other ``.txt`` files, e.g. a licence, are ignored).  Each
message line is ``[HH:MM] <nick> text``; the timestamp is the file's date
plus ``HH:MM`` in UTC.  Skipped, because they are not conversation typed
by a person: ``===`` system lines (joins, quits, renames), ``* nick ...``
action lines, notices (``[HH:MM] -nick:#chan- ...`` and
``[HH:MM] (nick/#chan) ...``; in the Ubuntu logs these are spam floods)
and messages by the ``ubotu`` bot.  Any other line is a bad line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ._lines import decode_lines
from ._progress import track
from .errors import BadLines, CorpusError
from .records import RawExample

__all__ = ["BOT_NICKS", "irc_log_files", "read_irc"]

BOT_NICKS: frozenset[str] = frozenset({"ubotu"})

_FILE_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_MESSAGE_RE = re.compile(r"^\[(\d{2}):(\d{2})\] <([^>]*)>(?: (.*))?$")
_SKIPPED_RE = re.compile(r"^\[\d{2}:\d{2}\]\s+(?:\* |-\S+- |\(\S+\) )")


def irc_log_files(directory: Path) -> list[Path]:
    """The dated ``*.txt`` log files under ``directory``, in a stable order."""
    if not directory.is_dir():
        raise CorpusError(f"{directory}: no such directory")
    files = [p for p in directory.rglob("*.txt") if p.is_file() and _FILE_DATE_RE.match(p.name)]
    if not files:
        raise CorpusError(f"{directory}: no IRC log files named YYYY-MM-DD*.txt")
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def _file_midnight(path: Path) -> float:
    match = _FILE_DATE_RE.match(path.name)
    if match is None:
        raise CorpusError(f"{path}: no YYYY-MM-DD date at the start of the file name")
    year, month, day = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise CorpusError(f"{path}: bad date in file name ({exc})") from None


def _read_file(path: Path, bad: BadLines) -> Iterator[RawExample]:
    label = str(path)
    midnight = _file_midnight(path)
    with open(path, "rb") as handle:
        for line, text in decode_lines(handle, label, bad):
            if not text.strip() or text.startswith("===") or _SKIPPED_RE.match(text):
                continue
            match = _MESSAGE_RE.match(text)
            if match is None:
                bad.report(label, line, f"not an IRC message line: {text[:60]!r}")
                continue
            hours, minutes, raw_nick, message = match.groups()
            nick = raw_nick.strip()
            if int(hours) > 23 or int(minutes) > 59 or not nick:
                bad.report(label, line, f"bad time or empty nick: {text[:60]!r}")
                continue
            if nick.lower() in BOT_NICKS:
                continue
            yield RawExample(
                user_id=nick,
                text=message or "",
                timestamp=midnight + 3600 * int(hours) + 60 * int(minutes),
                source=label,
                line=line,
            )


def read_irc(directory: Path, bad: BadLines, *, progress: bool = False) -> Iterator[RawExample]:
    """Yield every message in ``directory``'s logs, file by file, line by line."""
    files = irc_log_files(directory)
    for path in track(
        files,
        total=len(files),
        desc=f"reading {directory.name}",
        unit="file",
        enabled=progress,
    ):
        yield from _read_file(path, bad)
