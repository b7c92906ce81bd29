"""The user docs (README.md, docs/*.md) as a newcomer reads them.

- every ``fedkeys`` command line in a ``bash``/``sh`` block parses with the real CLI parser (a typo'd or
  renamed flag fails here, without running anything heavy);
- the docs never send the reader to internal work items ("issue 7");
- docs/task-settings.md lists every ``TaskCreate`` field with its true default and real ``create-task`` flags.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from fedkeys.cli import build_parser
from wire.protocol import TaskCreate

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETTINGS = ROOT / "docs" / "task-settings.md"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_OPTIONAL = re.compile(r"\s\[[^\]]*\]")  # a synopsis' optional group: `[--order 3]`
_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "(", ")"}


def shell_lines(markdown: str) -> list[str]:
    """The logical lines of a page's ``bash``/``sh`` blocks: continuations joined, comments kept."""
    lines = []
    for language, body in _FENCE.findall(markdown):
        if language in ("bash", "sh", "shell"):
            lines.extend(line.strip() for line in body.replace("\\\n", " ").splitlines() if line.strip())
    return lines


def fedkeys_argvs(line: str) -> list[list[str]]:
    """The ``fedkeys`` (or ``./run demo``) argument lists in one shell line, optional groups dropped."""
    lexer = shlex.shlex(_OPTIONAL.sub("", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    argvs, words = [], []
    for token in [*lexer, ";"]:
        if token not in _OPERATORS:
            words.append(token)
            continue
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            words = words[1:]  # VAR=value before the command
        if (words and words[0] in ("fedkeys", ".venv/bin/fedkeys")) or words[:2] == ["./run", "demo"]:
            argvs.append(words[1:])
        words = []
    return argvs


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None when the CLI parser accepts ``argv``, else its error message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exit_.code}"
    return None


def test_fedkeys_argvs_drop_comments_options_and_pipes() -> None:
    line = "fedkeys ngram --data d --out r [--order 3]   # a comment"
    assert fedkeys_argvs(line) == [["ngram", "--data", "d", "--out", "r"]]
    assert fedkeys_argvs("fedkeys admin status | pause | resume") == [["admin", "status"]]
    quoted = 'FOO=1 .venv/bin/fedkeys suggest --model "a b" "to be"'
    assert fedkeys_argvs(quoted) == [["suggest", "--model", "a b", "to be"]]
    assert fedkeys_argvs("./run demo --out x && ./run test -k y") == [["demo", "--out", "x"]]
    assert fedkeys_argvs("curl http://127.0.0.1:8000/metrics") == []


def test_shell_lines_join_continuations_and_skip_other_languages() -> None:
    page = "```bash\nfedkeys a \\\n  --b c\n```\n```mermaid\nfedkeys x\n```\n"
    assert shell_lines(page) == ["fedkeys a    --b c"]


def test_docs_command_lines_parse_with_the_real_cli() -> None:
    parser = build_parser()
    checked, failures = 0, []
    for page in DOCS:
        for line in shell_lines(page.read_text(encoding="utf-8")):
            for argv in fedkeys_argvs(line):
                checked += 1
                error = _parse(parser, argv)
                if error is not None:
                    failures.append(f"{page.relative_to(ROOT)}: `fedkeys {shlex.join(argv)}`: {error}")
    assert failures == []
    assert checked >= 20  # the extraction found the docs' commands (a broken extractor checks nothing)


_STILL_TO_REWORD: dict[str, str] = {}  # pages not yet reworded: strict xfail until they are


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, marks=[pytest.mark.xfail(strict=True, reason=_STILL_TO_REWORD[p.name])])
        if p.name in _STILL_TO_REWORD
        else p
        for p in DOCS
    ],
    ids=lambda p: p.name,
)
def test_user_docs_do_not_mention_internal_work_items(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert re.findall(r"(?i)\bissues? #?\d+", text) == []


def _rows(markdown: str) -> dict[str, list[str]]:
    """``field`` -> its table row's cells, for rows whose first cell is a code span."""
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells
    return rows


def _default_cell(default: Any) -> str:
    if default is PydanticUndefined:
        return "required"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return f"`{json.dumps(default)}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def _create_task_options() -> set[str]:
    parser = build_parser()
    admin = next(a for a in parser._subparsers._group_actions if "admin" in a.choices).choices["admin"]  # type: ignore[union-attr]
    create = next(a for a in admin._subparsers._group_actions if "create-task" in a.choices).choices["create-task"]  # type: ignore[union-attr]
    return {option for action in create._actions for option in action.option_strings}


def test_task_settings_lists_every_task_field_with_its_default() -> None:
    rows = _rows(SETTINGS.read_text(encoding="utf-8"))
    fields = TaskCreate.model_fields
    assert sorted(set(fields) - set(rows)) == []  # every field documented
    assert sorted(set(rows) - set(fields)) == []  # nothing documented that does not exist
    wrong = {name: (rows[name][2], _default_cell(f.default)) for name, f in fields.items()}
    wrong = {name: cells for name, cells in wrong.items() if cells[0] != cells[1]}
    assert wrong == {}  # field: (documented, true)


def test_task_settings_flags_are_real_create_task_options() -> None:
    rows = _rows(SETTINGS.read_text(encoding="utf-8"))
    options = _create_task_options()
    named = {name: cells[1].strip("`") for name, cells in rows.items() if cells[1] != "API only"}
    assert {name: flag for name, flag in named.items() if flag not in options} == {}
