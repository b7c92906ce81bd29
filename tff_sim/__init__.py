"""tff_sim: federated training of the keyboard model in TensorFlow Federated simulation.

Not built yet (its own issue). It will use ``model`` and ``data_tools`` only.
"""
