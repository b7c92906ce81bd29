"""Dependencies point one way (the house rule), checked on the source.

model/ imports TensorFlow and numpy only; data_tools/ none of the project's
packages; tff_sim/ uses model, data_tools and wire (the devices' codec); device_runtime/ model and the wire
format; wire/ numpy, pydantic and xxhash (the container checksum) only; coordinator/ the wire format, never TensorFlow
(Federated); secagg/ numpy and cryptography only (device_runtime and coordinator may use it); privacy/
numpy and dp-accounting only (tff_sim and coordinator both account epsilon with it).
fedkeys_errors/ (the root class of every domain error) imports nothing at all, so that
every package, data_tools and wire included, may import it without depending on another.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {
    "fedkeys_errors",
    "model",
    "data_tools",
    "tff_sim",
    "wire",
    "device_runtime",
    "coordinator",
    "fedkeys",
    "bench",
    "secagg",
    "privacy",
}

# package -> (project packages it may import, third-party packages it may import; None = any)
_ROOT = "fedkeys_errors"  # every package may import the error root; it imports nothing
RULES: dict[str, tuple[set[str], set[str] | None]] = {
    "fedkeys_errors": (set(), set()),
    "model": ({"model", _ROOT}, {"tensorflow", "numpy"}),
    "data_tools": ({"data_tools", _ROOT}, None),
    "tff_sim": ({"tff_sim", "model", "data_tools", "privacy", "wire", _ROOT}, None),
    "wire": ({"wire", _ROOT}, {"numpy", "pydantic", "xxhash"}),
    "device_runtime": ({"device_runtime", "model", "wire", "secagg", _ROOT}, None),
    "coordinator": ({"coordinator", "wire", "secagg", "privacy", _ROOT}, None),
    "secagg": ({"secagg", _ROOT}, {"numpy", "cryptography"}),
    "privacy": ({"privacy", _ROOT}, {"numpy", "dp_accounting"}),
}
FORBIDDEN = {
    "coordinator": {"tensorflow_federated", "tensorflow", "model", "tff_sim"},
    "model": {"tensorflow_federated"},
    "device_runtime": {"tensorflow_federated", "tff_sim", "coordinator"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party(name: str) -> bool:
    return name not in PROJECT and name not in sys.stdlib_module_names and name != "__future__"


@pytest.mark.parametrize("package", sorted(RULES))
def test_layering_package_imports_only_what_it_may(package: str) -> None:
    allowed_project, allowed_third_party = RULES[package]
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            if name in PROJECT and name not in allowed_project:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
            if allowed_third_party is not None and _third_party(name) and name not in allowed_third_party:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
            if name in FORBIDDEN.get(package, set()):
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not violations, "\n".join(violations)


def test_layering_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import tensorflow_federated as tff\nfrom data_tools import words\n")
    assert _imports(bad) == {"tensorflow_federated", "data_tools"}
