"""The first 32-bit word of ``numpy.random.SeedSequence(entropy).generate_state(1)``, in plain Python.

Every assignment carries a seed derived from the task's seed, the round and its place in the round
(``claims.session_seed``); the claim thread derives one per claim. Building a ``SeedSequence`` and
calling ``generate_state`` costs tens of microseconds in numpy's object and ``errstate`` machinery for a
few dozen 32-bit multiplications, so this is the same arithmetic on Python ints: O'Neill's seed_seq_fe
hash as numpy implements it (pool of 4 words; numpy's ``bit_generator.pyx``). The result is bit-identical
(tests compare it with numpy over many entropies), so every seed issued before stays the one issued now.
"""

from __future__ import annotations

from collections.abc import Sequence

_POOL = 4
_INIT_A = 0x43B0D7E5
_MULT_A = 0x931E8875
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED
_MIX_L = 0xCA01F9DD
_MIX_R = 0x4973F715
_MASK = 0xFFFFFFFF
_SHIFT = 16


def _words(entropy: Sequence[int]) -> list[int]:
    """``SeedSequence``'s entropy words: each int as its 32-bit words, least significant first (0 is one word)."""
    out: list[int] = []
    for n in entropy:
        if n < 0:
            raise ValueError(f"entropy must be non-negative, got {n}")
        if n == 0:
            out.append(0)
        while n > 0:
            out.append(n & _MASK)
            n >>= 32
    return out


def _constants(steps: int) -> tuple[tuple[int, int], ...]:
    """The hash constant before and after each of the first ``steps`` hashmix steps (it never depends on data)."""
    out, h = [], _INIT_A
    for _ in range(steps):
        nxt = (h * _MULT_A) & _MASK
        out.append((h, nxt))
        h = nxt
    return tuple(out)


_STEPS = _constants(_POOL * _POOL)  # the pool fill and the all-to-all mix: what four words of entropy take
_OUT_XOR, _OUT_MULT = _INIT_B, (_INIT_B * _MULT_B) & _MASK


def first_seed_word(entropy: Sequence[int]) -> int:
    """``int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])`` (uint32), without numpy."""
    words = _words(entropy)
    extra = max(0, len(words) - _POOL) * _POOL
    steps = iter(_STEPS if not extra else _constants(_POOL * _POOL + extra))

    def hashmix(value: int) -> int:
        xor, mult = next(steps)
        value = ((value ^ xor) * mult) & _MASK
        return value ^ (value >> _SHIFT)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(_POOL)]
    for src in range(_POOL):  # every word affects every other
        for dst in range(_POOL):
            if src != dst:
                r = (_MIX_L * pool[dst] - _MIX_R * hashmix(pool[src])) & _MASK
                pool[dst] = r ^ (r >> _SHIFT)
    for word in words[_POOL:]:  # entropy beyond the pool, mixed into each word
        for dst in range(_POOL):
            r = (_MIX_L * pool[dst] - _MIX_R * hashmix(word)) & _MASK
            pool[dst] = r ^ (r >> _SHIFT)
    value = ((pool[0] ^ _OUT_XOR) * _OUT_MULT) & _MASK  # generate_state's first word
    return value ^ (value >> _SHIFT)
