"""The suite's own layout rule: test modules have unique basenames.

Test directories have no ``__init__.py`` (pytest's default import mode puts
each directory on ``sys.path``), so two ``test_x.py`` in different folders
collide at collection and stop the whole run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_suite_layout_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py")
    assert [name for name, count in names.items() if count > 1] == []
