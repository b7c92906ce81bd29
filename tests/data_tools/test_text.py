from data_tools.text import words


def test_words_lowercases_and_drops_punctuation() -> None:
    assert words("Hello, World!! How are you?") == [
        "hello",
        "world",
        "how",
        "are",
        "you",
    ]


def test_words_keeps_internal_apostrophes() -> None:
    assert words("don't 'tis o'clock rock'n'roll '") == [
        "don't",
        "tis",
        "o'clock",
        "rock'n'roll",
    ]


def test_words_curly_apostrophes_become_straight() -> None:
    assert words("Don\u2019t it\u02bcs") == ["don't", "it's"]


def test_words_nfkc_folds_compatibility_forms() -> None:
    assert words("\ufb01ne \uff21\uff22\uff23 \u2460") == ["fine", "abc", "1"]


def test_words_digits_and_letters_are_words() -> None:
    assert words("ubuntu 9.04 on i386") == ["ubuntu", "9", "04", "on", "i386"]


def test_words_underscore_and_symbols_separate() -> None:
    assert words("foo_bar :-) \U0001f600 a/b") == ["foo", "bar", "a", "b"]


def test_words_non_latin_scripts_kept() -> None:
    assert words("Привет, МИР — ça va") == ["привет", "мир", "ça", "va"]


def test_words_empty_when_no_word_characters() -> None:
    assert words(" ... !!! ") == []
