import csv
import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.tokenizer import PAD_ID, TOKEN_PATTERN, UNK_ID, Tokenizer, split_words
from training.data import BUNDLED_DATA


def test_splits_words_and_keeps_punctuation_and_contractions() -> None:
    assert split_words("I DON'T love it!!  Really?") == [
        "i",
        "don't",
        "love",
        "it",
        "!",
        "!",
        "really",
        "?",
    ]


def test_vocabulary_is_ordered_by_frequency_then_alphabet() -> None:
    tokenizer = Tokenizer.build(["b a", "a c", "a b"])
    assert tokenizer.tokens == ["<pad>", "<unk>", "a", "b", "c"]


def test_min_freq_drops_rare_words_to_unknown() -> None:
    tokenizer = Tokenizer.build(["good good film", "bad"], min_freq=2)
    assert tokenizer.encode("good bad", max_length=5).ids == [tokenizer.index["good"], UNK_ID]


def test_encode_truncates_and_reports_it() -> None:
    tokenizer = Tokenizer.build(["one two three four"])
    short = tokenizer.encode("one two", max_length=3)
    long = tokenizer.encode("one two three four", max_length=3)
    assert (short.truncated, short.num_tokens, len(short.ids)) == (False, 2, 2)
    assert (long.truncated, long.num_tokens, len(long.ids)) == (True, 4, 3)


def test_text_without_words_encodes_to_unknown_not_to_nothing() -> None:
    assert Tokenizer.build(["x"]).encode("   ", max_length=4).ids == [UNK_ID]


def test_save_load_round_trip(tmp_path: Path) -> None:
    tokenizer = Tokenizer.build(["ünïcödé words", "café ☕ time"])
    tokenizer.save(tmp_path / "vocab.json")
    loaded = Tokenizer.load(tmp_path / "vocab.json")
    assert loaded.tokens == tokenizer.tokens
    assert loaded.encode("café time", 8) == tokenizer.encode("café time", 8)


def test_vocabulary_must_start_with_reserved_tokens() -> None:
    with pytest.raises(ValueError):
        Tokenizer(["a", "b"])


TOKENIZER = Tokenizer.build(["a good film", "a bad film", "😀 emoji", "مرحبا"])


@given(st.text(alphabet=st.characters(codec=None), max_size=300), st.integers(1, 50))
def test_any_unicode_text_yields_valid_ids(text: str, max_length: int) -> None:
    """Emoji, combining marks, RTL, zero-width, NUL, lone surrogates: never a crash or a bad id."""
    encoded = TOKENIZER.encode(text, max_length)
    assert 1 <= len(encoded.ids) <= max_length
    assert all(PAD_ID < i < len(TOKENIZER) for i in encoded.ids)
    assert encoded.truncated == (encoded.num_tokens > max_length)


@pytest.mark.parametrize(
    ("setting", "value"), [("lowercase", False), ("normalization", "NFC"), ("unk_id", 5)]
)
def test_vocabulary_written_with_other_settings_is_refused(
    tmp_path: Path, setting: str, value: object
) -> None:
    """A vocabulary from a tokenizer that splits or numbers differently would be misread."""
    Tokenizer.build(["a good film"]).save(tmp_path / "vocab.json")
    payload = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    payload[setting] = value
    (tmp_path / "vocab.json").write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(ValueError, match=setting):
        Tokenizer.load(tmp_path / "vocab.json")


@given(st.text(alphabet=st.sampled_from("ab1_' \t.!é中-"), max_size=60) | st.text(max_size=200))
def test_words_are_what_the_recorded_pattern_finds(text: str) -> None:
    """The tokenizer matches with a faster equivalent of TOKEN_PATTERN, the pattern stored with
    every vocabulary: both must split any text the same way (apostrophes and word runs above all)."""
    assert split_words(text) == TOKEN_PATTERN.findall(unicodedata.normalize("NFKC", text).lower())


def test_the_bundled_data_splits_as_the_recorded_pattern_does() -> None:
    with BUNDLED_DATA.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    for text in texts:
        assert split_words(text) == TOKEN_PATTERN.findall(
            unicodedata.normalize("NFKC", text).lower()
        ), text
