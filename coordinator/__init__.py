"""coordinator: the FastAPI server that devices check in to (Bonawitz et al. 2019).

Not built yet (its own issue). It never imports TensorFlow Federated.
"""
