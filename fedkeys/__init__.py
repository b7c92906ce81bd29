"""fedkeys: the command line and the end-to-end jobs that compose the packages.

- ``fedkeys.cli``: the ``fedkeys`` command; one ``_cli_*`` module per command
  area registers its subcommands; only a ``fedkeys_errors.FedkeysError``
  becomes a one-line ``fedkeys: error:`` (exit 2);
- ``fedkeys.baselines``: the central (or proxy-pretraining) and n-gram runs;
- ``fedkeys.suggest``: the suggestion strip, with probabilities, for run
  directories and ``.tflite`` models (the latter without TensorFlow);
- ``fedkeys.export``: the on-device plan (``export tflite``);
- ``fedkeys.admin_client``: the one HTTP client of the coordinator's admin API;
- ``fedkeys.deployed_run``: a deployed model as a run folder, with its rounds'
  log (``fedkeys.deployed_log``) and where it came from (``fedkeys.provenance``);
- ``fedkeys.emulate``: runs an emulated fleet until a stop rule;
- ``fedkeys.parity``: one deployed round against one simulated round;
- ``fedkeys.demo``: the main job, a sequence of named steps (``STEPS``), and its
  report (``fedkeys.demo_report``).

Everything here only composes ``data_tools``, ``model``, ``tff_sim``,
``wire``, ``device_runtime`` and the coordinator's HTTP API; the library never
calls the CLI.
"""
