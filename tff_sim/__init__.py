"""tff_sim: federated training of the keyboard model in TensorFlow Federated simulation.

- ``tff_sim.simulation.run_simulation`` (``fedkeys sim run``): rounds of TFF's
  own learning processes (``tff_sim.algorithms``: FedAvg weighted by tokens,
  FedSGD, FedAvgM, FedAdam, FedYogi, FedProx), validation every few rounds and
  test users at the end with TFF federated evaluation, per-round checkpoints
  through ``tff.program`` (``tff_sim.program_state``), ``metrics.csv``,
  TensorBoard and a recall plot (``tff_sim.run_log``);
- ``tff_sim.sampling`` and ``tff_sim.availability``: which clients train in a
  round, reproducible from (seed, round);
- ``tff_sim.client_datasets``: clients' messages as tf.data datasets (rows in
  the contract's order, ``wire.row_order``);
- ``tff_sim.aggregators`` and ``tff_sim.aggregators_codec``: how updates are
  combined; ``quant8``/``quant4``/``quant2`` compress each client's delta with
  the devices' own codec, in TensorFlow ops (``tff_sim.tf_codec``), keyed by
  per-client seeds, so a simulated compressed round predicts a deployed one;
- ``tff_sim.runtime``: TFF's C++ workers, owned (never left behind), one or
  several, local or on other hosts.

Uses ``model``, ``data_tools`` and ``wire`` (the client-training contract and
the codec) only. Modules are imported on demand: this package's ``__init__``
imports nothing, so the pure parts load without TFF.
"""
