"""The device's side of a secure round: four pure steps over frozen state.

Each step takes the state the previous one returned plus what the server sent,
and returns the new state and the message to upload (Bonawitz et al. 2017,
Figure 4, "User" column; neighbours from Bell et al. 2020). Private keys and
seeds never leave the state except as encrypted shares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterable, Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secagg import shamir
from secagg.errors import SecAggError
from secagg.keys import SEED_BYTES, KeyPair, agree, agree_all, generate_keypair
from secagg.masking import mask_input
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse

_NONCE_BYTES = 12
_ID_BYTES = 4


def _info(kind: bytes, params: RoundParams) -> bytes:
    return b"fedkeys-secagg-" + kind + params.round.to_bytes(8, "big")


def mask_seeds(private: bytes, peer_publics: Sequence[bytes], params: RoundParams) -> list[bytes]:
    """The pairwise mask seeds s_ij of this round with each peer (symmetric in i and j)."""
    return agree_all(private, peer_publics, info=_info(b"mask", params))


def commit_self_seed(seed: bytes, device: int, params: RoundParams) -> bytes:
    """SHA-256 of the self-mask seed, bound to the round and the device: what the advert commits to.

    The seed is 32 uniform bytes, so the hash reveals nothing of it (preimage
    resistance); after unmasking the server checks each rebuilt seed against it.
    """
    label = b"fedkeys-secagg-self-seed" + params.round.to_bytes(8, "big") + device.to_bytes(_ID_BYTES, "big")
    return hashlib.sha256(label + seed).digest()


def _share_key(private: bytes, peer_public: bytes, params: RoundParams) -> bytes:
    return agree(private, peer_public, info=_info(b"share", params))


@dataclasses.dataclass(frozen=True)
class ClientState:
    """What a device keeps between phases."""

    device: int
    c_keys: KeyPair
    s_keys: KeyPair
    self_seed: bytes = dataclasses.field(default=b"", repr=False)
    peers: dict[int, AdvertiseKeys] = dataclasses.field(default_factory=dict)  # advertised neighbours
    held: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)  # owner -> (b share, s share)
    input_sent: bool = False


def advertise(params: RoundParams, device: int) -> tuple[ClientState, AdvertiseKeys]:
    """Phase 0: fresh key pairs and self-mask seed (OS CSPRNG); upload the public halves and the seed's commitment."""
    params.check_device(device)
    c_keys, s_keys = generate_keypair(), generate_keypair()
    self_seed = secrets.token_bytes(SEED_BYTES)
    advert = AdvertiseKeys(device, c_keys.public, s_keys.public, commit_self_seed(self_seed, device, params))
    return ClientState(device, c_keys, s_keys, self_seed=self_seed), advert


def share_keys(
    params: RoundParams, state: ClientState, adverts: Iterable[AdvertiseKeys]
) -> tuple[ClientState, list[EncryptedShare]]:
    """Phase 1: Shamir-share ``b`` and the ``s`` private key among the neighbours that advertised.

    SecAggError("below_threshold") if fewer than ``t_share`` neighbours advertised
    (their shares could never be used), ("bad_message") for a duplicated key.
    """
    mine = params.graph[state.device]
    peers = {a.device: a for a in adverts if a.device in mine}
    if len({a.c_public for a in peers.values()} | {a.s_public for a in peers.values()}) != 2 * len(peers):
        raise SecAggError("bad_message", "two advertised public keys are equal")
    if len(peers) < params.t_share:
        raise SecAggError("below_threshold", f"{len(peers)} neighbours advertised, need {params.t_share}")
    points = [j + 1 for j in peers]
    b_shares = shamir.split(state.self_seed, points, params.t_share)
    s_shares = shamir.split(state.s_keys.private, points, params.t_share)
    out = []
    for j, advert in sorted(peers.items()):
        plaintext = (
            state.device.to_bytes(_ID_BYTES, "big")
            + j.to_bytes(_ID_BYTES, "big")
            + shamir.share_to_bytes(b_shares[j + 1])
            + shamir.share_to_bytes(s_shares[j + 1])
        )
        nonce = secrets.token_bytes(_NONCE_BYTES)
        key = _share_key(state.c_keys.private, advert.c_public, params)
        ciphertext = nonce + AESGCM(key).encrypt(nonce, plaintext, params.aad(state.device, j))
        out.append(EncryptedShare(state.device, j, ciphertext))
    return dataclasses.replace(state, peers=peers), out


def _open(params: RoundParams, state: ClientState, share: EncryptedShare) -> tuple[int, int]:
    advert = state.peers.get(share.source)
    if share.target != state.device or advert is None:
        raise SecAggError("bad_message", f"share {share.source}->{share.target} is not for device {state.device}")
    key = _share_key(state.c_keys.private, advert.c_public, params)
    nonce, body = share.ciphertext[:_NONCE_BYTES], share.ciphertext[_NONCE_BYTES:]
    try:
        plaintext = AESGCM(key).decrypt(nonce, body, params.aad(share.source, share.target))
    except InvalidTag as exc:
        raise SecAggError("bad_message", f"share from device {share.source} does not decrypt") from exc
    header = share.source.to_bytes(_ID_BYTES, "big") + share.target.to_bytes(_ID_BYTES, "big")
    if plaintext[: 2 * _ID_BYTES] != header:
        raise SecAggError("bad_message", f"share from device {share.source} names other devices")
    at = 2 * _ID_BYTES
    b = shamir.share_from_bytes(plaintext[at : at + shamir.SHARE_BYTES])
    s = shamir.share_from_bytes(plaintext[at + shamir.SHARE_BYTES :])
    return b, s


def masked_input(
    params: RoundParams, state: ClientState, received: Iterable[EncryptedShare], x: np.ndarray
) -> tuple[ClientState, MaskedInput]:
    """Phase 2: decrypt the shares addressed to us; mask ``x`` ((length,) uint32) with the senders.

    The devices we mask with are exactly those whose shares reached us, so the
    server can rebuild every pairwise mask of ours if one of them drops.
    """
    vector = np.asarray(x)
    if vector.shape != (params.length,) or vector.dtype != np.uint32:
        raise SecAggError("bad_message", f"input must be ({params.length},) uint32, got {vector.shape} {vector.dtype}")
    held = {}
    for share in received:
        if share.source in held:
            raise SecAggError("bad_message", f"two shares from device {share.source}")
        held[share.source] = _open(params, state, share)
    if len(held) < params.t_share:  # too few pairwise masks: revealing b later would expose x
        raise SecAggError("below_threshold", f"only {len(held)} neighbours shared keys, need {params.t_share}")
    peers = sorted(held)
    seeds = dict(
        zip(peers, mask_seeds(state.s_keys.private, [state.peers[j].s_public for j in peers], params), strict=True)
    )
    y = mask_input(vector, state.device, state.self_seed, seeds)
    return dataclasses.replace(state, held=held, input_sent=True), MaskedInput(state.device, y)


def unmask(params: RoundParams, state: ClientState, request: UnmaskRequest) -> UnmaskResponse:
    """Phase 3: for each neighbour we hold shares of, reveal the ``b`` share if its input arrived, else the ``s`` share.

    Refuses (SecAggError) a request naming a device both ways ("inconsistent"),
    one that leaves out our own input or a neighbour we masked with, or one with
    fewer than ``threshold`` survivors ("below_threshold"): answering it could
    reveal an individual input (Bonawitz et al. 2017, §4 round 4 checks).
    """
    if not state.input_sent:
        raise SecAggError("inconsistent", f"device {state.device} sent no input in this round")
    if request.survivors & request.dropped:
        raise SecAggError("inconsistent", f"devices {sorted(request.survivors & request.dropped)} listed both ways")
    if state.device not in request.survivors:
        raise SecAggError("inconsistent", f"device {state.device} sent its input but is not listed as a survivor")
    if len(request.survivors) < params.threshold:
        raise SecAggError("below_threshold", f"{len(request.survivors)} survivors, need {params.threshold}")
    missing = set(state.held) - request.survivors - request.dropped
    if missing:
        raise SecAggError("inconsistent", f"neighbours {sorted(missing)} are neither survivors nor dropped")
    self_shares = {j: b for j, (b, _) in state.held.items() if j in request.survivors}
    key_shares = {j: s for j, (_, s) in state.held.items() if j in request.dropped}
    return UnmaskResponse(state.device, self_shares, key_shares)
