"""secagg: secure aggregation, so the coordinator learns only the sum of the updates.

The protocol of Bonawitz et al. 2017 ("Practical Secure Aggregation for
Privacy-Preserving Machine Learning") with the sparse neighbour graph of
SecAgg+ (Bell et al. 2020), as pure functions over frozen records; transports
(HTTP, simulation) only sequence them.

- ``secagg.ring``: float updates <-> quantized integers in Z_{2^32} (``RingSpec``);
- ``secagg.keys``: X25519 key agreement + HKDF; ``secagg.prg``: ChaCha20 mask expansion;
- ``secagg.shamir``: Shamir secret sharing of key material;
- ``secagg.graph``: the SecAgg+ neighbour graph, k = O(log n);
- ``secagg.masking``: adding and removing masks;
- ``secagg.messages``: round parameters and phase messages;
- ``secagg.client`` / ``secagg.server``: the four phases on each side;
- ``secagg.phases``: the server's phase clock (deadlines, early close, abandoning);
- ``secagg.simulate``: all phases in one process.

Imports numpy, cryptography and the standard library only.
"""

from secagg.client import ClientState, advertise, masked_input, share_keys, unmask
from secagg.errors import REASONS, SecAggError
from secagg.graph import neighbour_count, neighbours
from secagg.messages import AdvertiseKeys, EncryptedShare, MaskedInput, RoundParams, UnmaskRequest, UnmaskResponse
from secagg.phases import Phase, PhaseDeadlines, SecureRound, advance, open_round
from secagg.ring import RingSpec, decode_sum, encode
from secagg.server import ServerState, collect_adverts, collect_inputs, route_shares, unmask_request, unmask_sum
from secagg.simulate import Dropouts, run_round

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
    "advance",
    "advertise",
    "collect_adverts",
    "collect_inputs",
    "decode_sum",
    "encode",
    "masked_input",
    "neighbour_count",
    "neighbours",
    "open_round",
    "route_shares",
    "run_round",
    "share_keys",
    "unmask",
    "unmask_request",
    "unmask_sum",
]
