"""Bytes on the wire for each phase's messages, so an HTTP route only moves opaque bodies;
and the server's whole round record, so a stateless server keeps it in a database row.

Fixed little-endian layouts (``struct``), one per message; every decoder
checks lengths and refuses trailing bytes with SecAggError("bad_message"),
never an IndexError. The masked input is the bulk of a round's traffic:
``4 * length`` bytes of uint32 ring elements after an 8-byte header.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from secagg import shamir
from secagg.errors import SecAggError
from secagg.keys import COMMITMENT_BYTES, KEY_BYTES
from secagg.messages import (
    AdvertiseKeys,
    EncryptedShare,
    MaskedInput,
    RoundParams,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.phases import Phase, PhaseDeadlines, SecureRound
from secagg.server import ServerState

_U32 = struct.Struct("<I")
_PAIR = struct.Struct("<II")
_SHARE_HEAD = struct.Struct("<III")  # source, target, ciphertext length


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.at, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise SecAggError("bad_message", f"{self.what} is truncated at byte {self.at}")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def done(self) -> None:
        if self.at != len(self.data):
            raise SecAggError("bad_message", f"{self.what} has {len(self.data) - self.at} trailing bytes")


ADVERT_BYTES = 4 + 2 * KEY_BYTES + COMMITMENT_BYTES  # device, c and s public keys, self-seed commitment


def encode_advert(advert: AdvertiseKeys) -> bytes:
    """device u32, c public 32 bytes, s public 32 bytes, self-seed commitment 32 bytes."""
    return _U32.pack(advert.device) + advert.c_public + advert.s_public + advert.b_commitment


def decode_advert(data: bytes) -> AdvertiseKeys:
    r = _Reader(data, "advertise-keys message")
    advert = AdvertiseKeys(r.u32(), r.take(KEY_BYTES), r.take(KEY_BYTES), r.take(COMMITMENT_BYTES))
    r.done()
    return advert


def encode_adverts(adverts: Sequence[AdvertiseKeys]) -> bytes:
    """count u32, then each advert (what a device downloads before sharing keys)."""
    return _U32.pack(len(adverts)) + b"".join(encode_advert(a) for a in adverts)


def decode_adverts(data: bytes) -> list[AdvertiseKeys]:
    r = _Reader(data, "advert list")
    count = r.u32()
    adverts = [decode_advert(r.take(ADVERT_BYTES)) for _ in range(count)]
    r.done()
    return adverts


def encode_shares(shares: Sequence[EncryptedShare]) -> bytes:
    """count u32, then (source u32, target u32, length u32, ciphertext) each."""
    parts = [_U32.pack(len(shares))]
    for s in shares:
        parts.append(_SHARE_HEAD.pack(s.source, s.target, len(s.ciphertext)) + s.ciphertext)
    return b"".join(parts)


def decode_shares(data: bytes) -> list[EncryptedShare]:
    r = _Reader(data, "share list")
    out = []
    for _ in range(r.u32()):
        source, target, length = _SHARE_HEAD.unpack(r.take(_SHARE_HEAD.size))
        out.append(EncryptedShare(source, target, r.take(length)))
    r.done()
    return out


def encode_input(item: MaskedInput) -> bytes:
    """device u32, length u32, then length uint32 little-endian."""
    y = np.asarray(item.y, dtype="<u4")
    return _PAIR.pack(item.device, y.size) + y.tobytes()


def decode_input(data: bytes, *, length: int) -> MaskedInput:
    """Refuses a vector of any other length than the round's before copying it."""
    r = _Reader(data, "masked input")
    device, count = _PAIR.unpack(r.take(_PAIR.size))
    if count != length:
        raise SecAggError("bad_message", f"masked input has {count} coordinates, the round has {length}")
    y = np.frombuffer(r.take(4 * count), dtype="<u4").astype(np.uint32)
    r.done()
    return MaskedInput(device, y)


def _encode_ids(ids: frozenset[int]) -> bytes:
    return _U32.pack(len(ids)) + b"".join(_U32.pack(i) for i in sorted(ids))


def _decode_ids(r: _Reader) -> frozenset[int]:
    return frozenset(r.u32() for _ in range(r.u32()))


def encode_request(request: UnmaskRequest) -> bytes:
    """survivors (count u32, ids), then dropped (count u32, ids)."""
    return _encode_ids(request.survivors) + _encode_ids(request.dropped)


def decode_request(data: bytes) -> UnmaskRequest:
    r = _Reader(data, "unmask request")
    request = UnmaskRequest(_decode_ids(r), _decode_ids(r))
    r.done()
    return request


def _encode_share_map(shares: dict[int, int]) -> bytes:
    return _U32.pack(len(shares)) + b"".join(_U32.pack(j) + shamir.share_to_bytes(v) for j, v in sorted(shares.items()))


def _decode_share_map(r: _Reader) -> dict[int, int]:
    out = {}
    for _ in range(r.u32()):
        owner = r.u32()
        if owner in out:
            raise SecAggError("bad_message", f"two shares of device {owner}")
        out[owner] = shamir.share_from_bytes(r.take(shamir.SHARE_BYTES))
    return out


def encode_response(response: UnmaskResponse) -> bytes:
    """device u32, self shares (count, (owner u32, 66-byte share)...), key shares (same)."""
    return _U32.pack(response.device) + _encode_share_map(response.self_shares) + _encode_share_map(response.key_shares)


def decode_response(data: bytes) -> UnmaskResponse:
    r = _Reader(data, "unmask response")
    response = UnmaskResponse(r.u32(), _decode_share_map(r), _decode_share_map(r))
    r.done()
    return response


# ---------------------------------------------------------------- the server's round record (for a database row)

_ROUND_HEAD = struct.Struct(
    "<4I7Id"
)  # round, seed hi, seed lo, n | length, threshold, degree, t_share, 3 unused | closes_at
_DEADLINES = struct.Struct("<4d")
_PHASES = list(Phase)


def _blob(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _take_blob(r: _Reader) -> bytes:
    return r.take(r.u32())


def encode_round(rnd: SecureRound) -> bytes:
    """The whole ``SecureRound`` as bytes, so a stateless server can keep it in a database row between requests."""
    p, d = rnd.params, rnd.deadlines
    if p.round_seed >= 1 << 64 or p.round >= 1 << 32:
        raise SecAggError("bad_config", f"round {p.round} / seed {p.round_seed} too large for the record")
    head = _ROUND_HEAD.pack(
        p.round, p.round_seed >> 32, p.round_seed & 0xFFFFFFFF, p.n, p.length, p.threshold, p.degree,
        p.share_threshold, _PHASES.index(rnd.phase), int(rnd.state is not None), int(rnd.total is not None),
        rnd.closes_at,
    )  # fmt: skip
    parts = [head, _DEADLINES.pack(d.advertise_s, d.share_s, d.input_s, d.unmask_s), _blob(rnd.reason.encode())]
    parts.append(encode_adverts(list(rnd.adverts.values())))
    parts.append(_U32.pack(len(rnd.bundles)))
    parts += [_U32.pack(device) + _blob(encode_shares(bundle)) for device, bundle in sorted(rnd.bundles.items())]
    parts.append(_U32.pack(len(rnd.responses)) + b"".join(_blob(encode_response(x)) for x in rnd.responses.values()))
    if rnd.state is not None:
        s = rnd.state
        parts.append(encode_adverts(list(s.adverts.values())))
        parts.append(_encode_ids(s.shared) + _encode_ids(s.received))
        parts.append(_U32.pack(len(s.inbox)))
        parts += [_U32.pack(device) + _blob(encode_shares(inbox)) for device, inbox in sorted(s.inbox.items())]
        parts.append(_blob(b"" if s.masked_sum is None else np.asarray(s.masked_sum, "<u4").tobytes()))
    if rnd.total is not None:
        parts.append(np.asarray(rnd.total, "<u4").tobytes())
    return b"".join(parts)


def _vector(data: bytes, length: int, what: str) -> np.ndarray:
    if len(data) != 4 * length:
        raise SecAggError("bad_message", f"{what} has {len(data)} bytes, expected {4 * length}")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def decode_round(data: bytes) -> SecureRound:
    """Inverse of ``encode_round`` (SecAggError("bad_message") for anything malformed)."""
    r = _Reader(data, "secure round record")
    (number, seed_hi, seed_lo, n, length, threshold, degree, t_share, phase, has_state, has_total, closes_at) = (
        _ROUND_HEAD.unpack(r.take(_ROUND_HEAD.size))
    )
    try:
        params = RoundParams(number, (seed_hi << 32) | seed_lo, n, length, threshold, degree, t_share)
        deadlines = PhaseDeadlines(*_DEADLINES.unpack(r.take(_DEADLINES.size)))
        stage = _PHASES[phase]
    except (ValueError, IndexError) as exc:
        raise SecAggError("bad_message", f"secure round record has bad parameters: {exc}") from exc
    reason = _take_blob(r).decode()
    adverts = {a.device: a for a in _decode_adverts_from(r)}
    bundles = {}
    for _ in range(r.u32()):
        device = r.u32()
        bundles[device] = tuple(decode_shares(_take_blob(r)))
    responses = {}
    for _ in range(r.u32()):
        response = decode_response(_take_blob(r))
        responses[response.device] = response
    state = None
    if has_state:
        state_adverts = {a.device: a for a in _decode_adverts_from(r)}
        shared, received = _decode_ids(r), _decode_ids(r)
        inbox = {}
        for _ in range(r.u32()):
            device = r.u32()
            inbox[device] = tuple(decode_shares(_take_blob(r)))
        raw = _take_blob(r)
        masked_sum = _vector(raw, length, "masked sum") if raw else None
        state = ServerState(params, state_adverts, inbox, shared, received, masked_sum)
    total = _vector(r.take(4 * length), length, "total") if has_total else None
    r.done()
    return SecureRound(params, deadlines, stage, closes_at, state, adverts, bundles, responses, total, reason)


def _decode_adverts_from(r: _Reader) -> list[AdvertiseKeys]:
    return [decode_advert(r.take(ADVERT_BYTES)) for _ in range(r.u32())]
