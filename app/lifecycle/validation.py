"""The rules a text must meet before the model reads it, checked one text at a time.

The classify flow refuses a request at its first text at fault (app/infer/classify.py); bulk
scoring (app/bulk/) refuses that row alone and goes on. Both read the same rules here, so a text
is refused by one exactly when it is refused by the other, with the same words.
"""

from dataclasses import dataclass
from typing import Literal

from app.core.artifacts import Artifacts
from app.core.tokenizer import Encoded, Tokenizer
from app.settings import Settings

EMPTY = "empty or whitespace-only text"
# A text that is not EMPTY, as the OpenAPI document declares it on every text (`encode` is what
# applies it): a JSON Schema pattern (unanchored) for one character `str.strip()` keeps. What
# str.isspace counts as whitespace is written out, as regex dialects disagree on `\s` (ECMA-262's
# leaves out U+001C-U+001F and U+0085 and adds U+FEFF).
NOT_EMPTY_PATTERN = (
    r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


@dataclass(frozen=True)
class TextRules:
    tokenizer: Tokenizer
    max_length: int  # tokens the model reads
    max_chars: int  # MAX_TEXT_CHARS
    truncation: Literal["truncate", "reject"]  # TRUNCATION

    @classmethod
    def of(cls, artifacts: Artifacts, settings: Settings) -> "TextRules":
        return cls(
            artifacts.tokenizer, artifacts.max_length, settings.max_text_chars, settings.truncation
        )

    def encode(self, text: str) -> Encoded | str:
        """Word ids of a text the service accepts, or why it refuses it (a problem, not raised:
        bulk scoring meets refused rows by the thousand and only records them)."""
        if not text.strip():
            return EMPTY
        if len(text) > self.max_chars:
            return f"{len(text)} characters, at most {self.max_chars}"
        item = self.tokenizer.encode(text, self.max_length)
        if item.truncated and self.truncation == "reject":
            return (
                f"{item.num_tokens} tokens, the model reads at most {self.max_length} "
                "(TRUNCATION=reject)"
            )
        return item
