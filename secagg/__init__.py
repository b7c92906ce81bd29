"""secagg: secure aggregation, so the coordinator learns only the sum of the updates.

The protocol of Bonawitz et al. 2017 ("Practical Secure Aggregation for
Privacy-Preserving Machine Learning") with the sparse neighbour graph of
SecAgg+ (Bell et al. 2020), as pure functions over frozen records; transports
(HTTP, simulation) only sequence them.

- ``secagg.ring``: float values <-> quantized integers in Z_{2^32} (``RingSpec``);
- ``secagg.updates``: a weighted model delta <-> one ring vector ``[w, w * delta]``, the ring sum -> the weighted mean;
- ``secagg.bounds``: what n in-range inputs can sum to (the check on the unmasked sum);
- ``secagg.keys``: X25519 key agreement + HKDF; ``secagg.prg``: ChaCha20 mask expansion;
- ``secagg.shamir``: Shamir secret sharing of key material (extra shares checked on reconstruction);
- ``secagg.graph``: the SecAgg+ neighbour graph, k = O(log n);
- ``secagg.masking``: adding and removing masks;
- ``secagg.messages``: round parameters and phase messages;
- ``secagg.client`` / ``secagg.server``: the four phases on each side;
- ``secagg.phases``: the server's phase clock (deadlines, early close, abandoning);
- ``secagg.encoding``: each message as bytes (HTTP bodies);
- ``secagg.simulate``: all phases in one process.

Imports numpy, cryptography and the standard library only.
"""

from secagg.bounds import check_sum
from secagg.client import ClientState, advertise, masked_input, share_keys, unmask
from secagg.errors import REASONS, SecAggError
from secagg.graph import neighbour_count, neighbours
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse
from secagg.phases import Phase, PhaseDeadlines, SecureRound, advance, open_round
from secagg.ring import RingSpec, decode_sum, encode
from secagg.server import ServerState, collect_adverts, collect_inputs, route_shares, unmask_request, unmask_sum
from secagg.simulate import Dropouts, run_round
from secagg.updates import WeightedMean, delta_to_ring, flat_length, mean_from_ring, ring_length, weight_level

__all__ = [
    "REASONS",
    "AdvertiseKeys",
    "ClientState",
    "Dropouts",
    "EncryptedShare",
    "MaskedInput",
    "Phase",
    "PhaseDeadlines",
    "RingSpec",
    "RoundParams",
    "SecAggError",
    "SecureRound",
    "ServerState",
    "UnmaskRequest",
    "UnmaskResponse",
    "WeightedMean",
    "advance",
    "advertise",
    "check_sum",
    "collect_adverts",
    "collect_inputs",
    "decode_sum",
    "delta_to_ring",
    "encode",
    "flat_length",
    "masked_input",
    "mean_from_ring",
    "neighbour_count",
    "neighbours",
    "open_round",
    "ring_length",
    "route_shares",
    "run_round",
    "share_keys",
    "unmask",
    "unmask_request",
    "unmask_sum",
    "weight_level",
]
