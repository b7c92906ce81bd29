"""Text normalization: what counts as a word for the keyboard.

The keyboard predicts whole words, so the corpus is reduced to the sequence
of words a person typed; punctuation, emoji and symbols are dropped because
they are not what the next-word model suggests.  The rule is deliberately
simple so the phone can apply exactly the same one before looking words up:

1. Unicode NFKC (full-width letters, ligatures and compatibility forms fold
   to their plain equivalents, e.g. ``"ﬁ"`` -> ``"fi"``),
2. lowercase (``str.lower``),
3. curly apostrophes (``’``, ``‘``, ``ʼ``, ``′``) become ``'``,
4. a word is a run of letters or digits, optionally joined by single inner
   apostrophes (``don't``, ``o'clock``, ``'tis`` -> ``tis``); everything
   else separates words.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["words"]

_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})


def words(text: str) -> list[str]:
    """Split ``text`` into normalized words (see the module docstring).

    >>> words("Don’t PANIC, it's 42!")
    ["don't", 'panic', "it's", '42']
    """
    normalized = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    return _WORD_RE.findall(normalized)
