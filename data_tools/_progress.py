"""Typed wrappers around tqdm progress bars (tqdm ships no type hints)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Protocol, Self, TypeVar

__all__ = ["Bar", "bar", "track"]

T = TypeVar("T")


class Bar(Protocol):
    """The part of a tqdm bar that data_tools uses."""

    def update(self, n: int = 1) -> object: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> object: ...


def bar(*, total: int | None, desc: str, unit: str, enabled: bool, unit_scale: bool = False) -> Bar:
    """A progress bar (with ETA when ``total`` is known); silent unless ``enabled``."""
    from tqdm import tqdm  # here, not at import: the tokenizer is read by `fedkeys suggest`, which shows no bar

    made: Bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, disable=not enabled)
    return made


def track(items: Iterable[T], *, total: int, desc: str, unit: str, enabled: bool) -> Iterator[T]:
    """Iterate ``items`` while advancing a bar of ``total`` steps."""
    with bar(total=total, desc=desc, unit=unit, enabled=enabled) as progress:
        for item in items:
            yield item
            progress.update(1)
