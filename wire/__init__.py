"""wire: the one home of everything devices and the coordinator exchange.

Both sides import it, so they can never disagree on a byte:

- ``wire.codec``: the update codec's pure numpy pieces (L2 clipping, randomized
  Hadamard rotation with a per-round rotation seed, unbiased stochastic
  quantization with a per-session rounding seed, bit-packing);
- ``wire.update``: the self-describing binary update message and the float32
  checkpoint blob built from the same tensor container;
- ``wire.manifest``: the exported training plan's manifest and its verification;
- ``wire.provenance``: where the plan's model came from (run, rounds, pretrained on);
- ``wire.protocol``: the JSON messages of the HTTP protocol (pydantic, the HTTP
  boundary);
- ``wire.contract``: the client-training contract (``ClientTraining``: local
  epochs, learning rate, row cap, data seed, codec, clip) that simulation and
  deployment both run, with ``wire.row_order`` (which rows a client trains on,
  in what order) and ``wire.habits`` (the phones' diurnal availability);
- ``wire.counter_rng``: the codec's keyed counter-based random numbers, which
  TensorFlow reproduces (``tff_sim.tf_codec``).

Simulation (``tff_sim``) imports it too, so a simulated round follows the same
contract as a deployed one.

Imports numpy, pydantic and the standard library only.
"""

from wire.codec import (
    CODECS,
    CodecSpec,
    clip_by_global_norm,
    dequantize,
    encode_tensor,
    global_l2_norm,
    hadamard_rotate,
    hadamard_unrotate,
    pack_bits,
    round_rotation_seed,
    stochastic_quantize,
    unpack_bits,
    unrotate_tensor,
)
from wire.contract import ClientTraining, ContractError
from wire.manifest import (
    MANIFEST_FILE,
    MANIFEST_FORMAT_VERSION,
    ManifestError,
    PlanManifest,
    TensorSpec,
    load_manifest,
    sha256_file,
    verify_bytes,
    verify_file,
    write_manifest,
)
from wire.update import (
    FORMAT_VERSION,
    UpdateMessage,
    WireError,
    decode_update,
    decode_weights,
    encode_update,
    encode_weights,
    raw_nbytes,
)

__all__ = [
    "CODECS",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT_VERSION",
    "ClientTraining",
    "CodecSpec",
    "ContractError",
    "ManifestError",
    "PlanManifest",
    "TensorSpec",
    "UpdateMessage",
    "WireError",
    "clip_by_global_norm",
    "decode_update",
    "decode_weights",
    "dequantize",
    "encode_tensor",
    "encode_update",
    "encode_weights",
    "global_l2_norm",
    "hadamard_rotate",
    "hadamard_unrotate",
    "load_manifest",
    "pack_bits",
    "raw_nbytes",
    "round_rotation_seed",
    "sha256_file",
    "stochastic_quantize",
    "unpack_bits",
    "unrotate_tensor",
    "verify_bytes",
    "verify_file",
    "write_manifest",
]
