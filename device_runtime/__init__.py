"""device_runtime: the phone side (eligibility, LiteRT training, update encoding) and a fleet emulator.

Not built yet (its own issue). It will use ``model`` and the shared wire format only.
"""
