"""Issue 17.3: help that teaches. Every option has help and shows its default, every subcommand an example."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from fedkeys._cli_common import DeferringParser, Parser, _DeprecatedAlias, add_command
from fedkeys.cli import build_parser, main


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command parser under ``parser``, with its command line."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join((*path, name)), child
                yield from _commands(child, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction, _DeprecatedAlias)
    return [a for a in parser._actions if not isinstance(a, skip)]


def test_cli_parser_walk_finds_every_area() -> None:
    areas = {name for name in COMMANDS if " " not in name}
    assert areas == {"data", "central", "ngram", "sim", "export", "suggest", "serve", "admin", "devices", "demo"}
    assert len(COMMANDS) == 23  # 10 areas and 13 actions under data, central, sim, export, admin, devices


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_every_option_has_help(command: str) -> None:
    missing = [a.dest for a in _options(COMMANDS[command]) if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_every_subcommand_has_an_example(command: str) -> None:
    epilog = COMMANDS[command].epilog or ""
    assert epilog.startswith("example:\n  ")
    assert "fedkeys " + command.split()[0] in epilog


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_help_shows_every_default(command: str) -> None:
    parser = COMMANDS[command]
    text = " ".join(parser.format_help().split())
    for action in _options(parser):
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
            assert f"(default: {action.default})" in text, action.dest


def test_cli_deprecated_aliases_are_hidden_and_warn(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["sim", "run", "--data", "d", "--out", "o", "--max-client-rows", "7"])
    assert args.max_rows == 7
    assert "fedkeys: warning: --max-client-rows is deprecated; use --max-rows" in capsys.readouterr().err
    args = parser.parse_args(["export", "tflite", "--from", "r", "--out", "a", "--learning-rate", "0.25"])
    assert args.client_lr == 0.25
    args = parser.parse_args(["admin", "status", "--url", "http://h:1"])
    assert args.coordinator == "http://h:1"
    emulate = ["devices", "emulate", "--population", "p", "--data", "d", "--devices", "1"]
    assert parser.parse_args([*emulate, "--api-key", "k"]).api_key == "k"
    assert "--api-key is deprecated; use --api-key-file or FEDKEYS_API_KEY" in capsys.readouterr().err
    assert "--api-key " not in COMMANDS["devices emulate"].format_help()
    assert "--url" not in COMMANDS["admin status"].format_help()
    assert "--max-client-rows" not in COMMANDS["sim run"].format_help()


def test_cli_one_naming_scheme() -> None:
    """--client-lr, --max-rows and --coordinator wherever the concept appears; no --api-key flag (it shows in ps)."""
    for command, parser in COMMANDS.items():
        shown = {s for a in _options(parser) for s in a.option_strings}
        assert "--max-client-rows" not in shown and "--url" not in shown and "--api-key" not in shown, command
        if command != "central train":  # central training's Adam rate is not a client learning rate
            assert "--learning-rate" not in shown, command
    for command in ("sim run", "export tflite", "admin create-task", "demo"):
        assert any("--client-lr" in a.option_strings for a in _options(COMMANDS[command])), command
    for command in ("sim run", "admin create-task", "demo"):
        assert any("--max-rows" in a.option_strings for a in _options(COMMANDS[command])), command
    for command in ("admin status", "admin create-task", "devices emulate"):
        assert any("--coordinator" in a.option_strings for a in _options(COMMANDS[command])), command


def test_cli_verbose_works_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["suggest", "--model", "m", "hi", "-v"]).verbose is True
    assert parser.parse_args(["-v", "suggest", "--model", "m", "hi"]).verbose is True
    assert parser.parse_args(["suggest", "--model", "m", "hi"]).verbose is False


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("fedkeys 0.")


def test_cli_sim_run_accepts_the_secure_aggregator() -> None:
    args = build_parser().parse_args(["sim", "run", "--data", "d", "--out", "o", "--aggregator", "secure"])
    assert args.aggregator == "secure"


def test_cli_bad_choice_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "run", "--data", "d", "--out", "o", "--aggregator", "quant3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedkeys: error: fedkeys sim run: argument --aggregator: invalid choice: 'quant3'")
    assert err.count("\n") == 1


def test_deferring_parser_adds_a_commands_flags_only_when_that_command_runs() -> None:
    added: list[str] = []

    def flags(parser: Parser) -> None:
        added.append(parser.prog)
        parser.add_argument("--n", type=int, default=1, help="n")

    parser = DeferringParser(prog="p")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("a", "b"):
        add_command(sub, name, help=name, example=name).add_flags(flags)
    assert added == []
    assert parser.parse_args(["b", "--n", "3"]).n == 3
    assert added == ["p b"]  # command a's flags (and their imports) were never built
    eager = Parser(prog="q")
    add_command(eager.add_subparsers(dest="command"), "a", help="a", example="a").add_flags(flags)
    assert added == ["p b", "q a"]  # a plain Parser adds them at once: build_parser() shows every flag
