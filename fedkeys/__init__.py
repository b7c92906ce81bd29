"""fedkeys: the command line and the end-to-end jobs that compose the packages.

``fedkeys.cli`` is the ``fedkeys`` command; ``fedkeys.baselines`` runs the
central and n-gram references; ``fedkeys.suggest`` is the suggestion strip;
``fedkeys.demo`` is the main job. Everything here only composes
``data_tools`` and ``model`` (and later ``tff_sim``, ``coordinator`` ...).
"""
