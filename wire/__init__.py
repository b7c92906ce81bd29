"""wire: the one home of everything devices and the coordinator exchange.

Both sides import it, so they can never disagree on a byte:

- ``wire.codec``: the update codec's pure numpy pieces (L2 clipping, randomized
  Hadamard rotation, unbiased stochastic quantization, bit-packing);
- ``wire.update``: the self-describing binary update message and the float32
  checkpoint blob built from the same tensor container;
- ``wire.manifest``: the exported training plan's manifest and its verification;
- ``wire.protocol``: the JSON messages of the HTTP protocol (pydantic, the HTTP
  boundary).

Imports numpy, pydantic and the standard library only.
"""
