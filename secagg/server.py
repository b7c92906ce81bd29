"""The server's side of a secure round: four pure steps over frozen state.

The server relays public keys and encrypted shares, sums masked inputs and, once
the masked-input phase closes, asks the survivors for exactly the shares it
needs: self-mask seeds of devices whose input arrived, mask keys of devices
that shared keys but sent no input (Bonawitz et al. 2017, Figure 4, "Server"
column; Bell et al. 2020 for the neighbour graph). It never asks for both
secrets of one device, and every step refuses with SecAggError("below_threshold")
when fewer than ``threshold`` devices remain, so a round is abandoned whole
rather than partially revealed. Rebuilt secrets are checked (every extra share
on the same polynomial, each seed against its owner's commitment, each key
against its public key) before any mask is removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from secagg import shamir
from secagg.client import commit_self_seed, mask_seeds
from secagg.errors import SecAggError
from secagg.keys import keypair_from_private
from secagg.masking import remove_masks
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse


@dataclasses.dataclass(frozen=True)
class ServerState:
    """The server's view of one secure round, phase by phase."""

    params: RoundParams
    adverts: dict[int, AdvertiseKeys] = dataclasses.field(default_factory=dict)  # U1
    inbox: dict[int, tuple[EncryptedShare, ...]] = dataclasses.field(default_factory=dict)  # target -> shares
    shared: frozenset[int] = frozenset()  # U2: devices whose shares were relayed
    received: frozenset[int] = frozenset()  # U3 so far: devices whose masked input arrived
    masked_sum: np.ndarray | None = None  # (length,) uint32 running ring sum of their inputs (never kept apart)


def _require(count: int, params: RoundParams, phase: str) -> None:
    if count < params.threshold:
        raise SecAggError(
            "below_threshold", f"{count} devices left after {phase}, threshold {params.threshold}: round abandoned"
        )


def collect_adverts(params: RoundParams, adverts: Iterable[AdvertiseKeys]) -> ServerState:
    """Close phase 0: keep one advert per device of the round."""
    kept: dict[int, AdvertiseKeys] = {}
    for advert in adverts:
        params.check_device(advert.device)
        if advert.device in kept:
            raise SecAggError("bad_message", f"device {advert.device} advertised twice")
        kept[advert.device] = advert
    _require(len(kept), params, "advertise keys")
    return ServerState(params, adverts=kept)


def check_bundle(state: ServerState, source: int, bundle: Sequence[EncryptedShare]) -> None:
    """SecAggError("bad_message") unless ``bundle`` holds one share from ``source`` per advertised neighbour."""
    if source not in state.adverts:
        raise SecAggError("bad_message", f"device {source} shared keys without advertising")
    targets = [s.target for s in bundle]
    if any(s.source != source for s in bundle) or len(set(targets)) != len(targets):
        raise SecAggError("bad_message", f"device {source}'s share bundle is malformed")
    if set(targets) != state.params.graph[source] & state.adverts.keys():
        raise SecAggError("bad_message", f"device {source} must share with exactly its advertised neighbours")


def route_shares(state: ServerState, bundles: Mapping[int, Sequence[EncryptedShare]]) -> ServerState:
    """Close phase 1: relay each device's shares to their holders; U2 = the devices that sent theirs.

    A bundle must come from an advertised device and address only its
    advertised neighbours, each once. Shares for devices that did not send their
    own bundle are dropped (those devices are out of the round).
    """
    for source, bundle in bundles.items():
        check_bundle(state, source, bundle)
    params = state.params
    shared = frozenset(bundles)
    _require(len(shared), params, "share keys")
    inbox: dict[int, list[EncryptedShare]] = {i: [] for i in shared}
    for bundle in bundles.values():
        for share in bundle:
            if share.target in shared:
                inbox[share.target].append(share)
    return dataclasses.replace(state, inbox={i: tuple(v) for i, v in inbox.items()}, shared=shared)


def check_input(state: ServerState, item: MaskedInput) -> None:
    """SecAggError("bad_message") unless ``item`` is a (length,) uint32 vector from a device that shared keys."""
    if item.device not in state.shared:
        raise SecAggError("bad_message", f"device {item.device} sent an input without sharing keys")
    y = np.asarray(item.y)
    if y.shape != (state.params.length,) or y.dtype != np.uint32:
        raise SecAggError("bad_message", f"device {item.device}'s input is {y.shape} {y.dtype}")


def add_input(state: ServerState, item: MaskedInput) -> ServerState:
    """Phase 2: add one masked input to the running ring sum (one per device that shared keys)."""
    check_input(state, item)
    if item.device in state.received:
        raise SecAggError("bad_message", f"device {item.device} sent two inputs")
    base = np.zeros(state.params.length, np.uint32) if state.masked_sum is None else state.masked_sum
    return dataclasses.replace(
        state, received=state.received | {item.device}, masked_sum=np.add(base, np.asarray(item.y))
    )


def collect_inputs(state: ServerState, inputs: Iterable[MaskedInput]) -> ServerState:
    """Close phase 2 over ``inputs``: U3 = the devices of U2 whose masked input arrived."""
    for item in inputs:
        state = add_input(state, item)
    _require(len(state.received), state.params, "masked input")
    return state


def unmask_request(state: ServerState) -> UnmaskRequest:
    """Phase 3 request: survivors (input arrived) and dropped (shared keys, no input)."""
    survivors = state.received
    _require(len(survivors), state.params, "masked input")
    return UnmaskRequest(survivors=survivors, dropped=state.shared - survivors)


def check_response(state: ServerState, request: UnmaskRequest, r: UnmaskResponse) -> None:
    """SecAggError unless ``r`` comes from a survivor and reveals only what ``request`` asked of its neighbours."""
    if r.device not in request.survivors:
        raise SecAggError("bad_message", f"unexpected unmask response from device {r.device}")
    if not (r.self_shares.keys() <= request.survivors and r.key_shares.keys() <= request.dropped):
        raise SecAggError("inconsistent", f"device {r.device} revealed shares that were not asked for")
    if not (r.self_shares.keys() | r.key_shares.keys()) <= state.params.graph[r.device]:
        raise SecAggError("bad_message", f"device {r.device} sent shares of devices that are not its neighbours")


def _shares_by_owner(responses: Sequence[UnmaskResponse], self_seed: bool) -> dict[int, dict[int, int]]:
    """owner -> {holder's Shamir point: share}, for the self-seed shares or the mask-key shares."""
    out: dict[int, dict[int, int]] = {}
    for r in responses:
        for owner, share in (r.self_shares if self_seed else r.key_shares).items():
            out.setdefault(owner, {})[r.device + 1] = share
    return out


def _rebuild_self_seeds(state: ServerState, request: UnmaskRequest, kept: Sequence[UnmaskResponse]) -> list[bytes]:
    """Each survivor's self-mask seed, checked against the commitment it advertised before sharing it."""
    shares = _shares_by_owner(kept, True)
    seeds = []
    for i in sorted(request.survivors):
        seed = shamir.reconstruct(shares.get(i, {}), state.params.t_share)
        if commit_self_seed(seed, i, state.params) != state.adverts[i].b_commitment:
            raise SecAggError("bad_shares", f"the shares of device {i}'s self-mask seed do not match its commitment")
        seeds.append(seed)
    return seeds


def _rebuild_mask_keys(state: ServerState, request: UnmaskRequest, kept: Sequence[UnmaskResponse]) -> dict[int, bytes]:
    """Each dropped device's mask private key, checked against the public key it advertised."""
    shares = _shares_by_owner(kept, False)
    keys = {}
    for j in sorted(request.dropped):
        private = shamir.reconstruct(shares.get(j, {}), state.params.t_share)
        if keypair_from_private(private).public != state.adverts[j].s_public:
            raise SecAggError("bad_shares", f"the shares of device {j}'s mask key do not match its public key")
        keys[j] = private
    return keys


UNMASK_THREADS = 2  # threads that expand masks at unmasking (the coordinator's machine has 2 cores)


def unmask_sum(state: ServerState, responses: Iterable[UnmaskResponse], *, threads: int = UNMASK_THREADS) -> np.ndarray:
    """Close phase 3: the ring sum of the survivors' inputs, ``(length,) uint32``.

    Every secret is rebuilt and checked before anything is computed: fewer than
    ``t_share`` shares is SecAggError("unrecoverable"); shares that do not lie on
    one polynomial, or rebuild a secret other than the one its owner committed
    to (the ``b`` commitment, the ``s`` public key), are ("bad_shares") — one
    wrong share would otherwise unmask to a garbage sum (issue 14). No sum then.
    The masks come off in one cache-blocked pass shared by ``threads`` threads (``prg.add_masks``).
    """
    params = state.params
    request = unmask_request(state)
    kept: list[UnmaskResponse] = []
    seen: set[int] = set()
    for r in responses:
        check_response(state, request, r)
        if r.device in seen:
            raise SecAggError("bad_message", f"repeated unmask response from device {r.device}")
        seen.add(r.device)
        kept.append(r)
    _require(len(kept), params, "unmask")
    self_seeds = _rebuild_self_seeds(state, request, kept)
    mask_keys = _rebuild_mask_keys(state, request, kept)
    pairs = []
    for j, private in mask_keys.items():
        survivors = sorted(params.graph[j] & request.survivors)
        seeds = mask_seeds(private, [state.adverts[i].s_public for i in survivors], params)
        pairs += [(i, j, seed) for i, seed in zip(survivors, seeds, strict=True)]
    total = np.array(state.masked_sum, dtype=np.uint32)  # (length,), a copy
    remove_masks(total, self_seeds, pairs, threads=threads)
    return total
