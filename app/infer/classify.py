"""One classify flow for every protocol: validate and tokenize the texts, run them through the
queue, and hand back the probabilities and the chosen labels as plain data.

REST (/classify and its fast path) and the Open Inference Protocol each format the result their
own way and map the errors of app/infer/errors.py to their own answers.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app import metrics
from app.core.tokenizer import Encoded
from app.infer.errors import InvalidInput
from app.infer.results import prediction
from app.infer.state import LoadedVersion, ModelRef
from app.infer.validation import TextRules

# Up to this many characters in a request are tokenized on the event loop (about 1 ms here);
# more go to the tokenizer thread, so a few large requests cannot stall every other one (and
# the liveness probe). Below it the thread hop would cost more than the tokenizing.
INLINE_TOKENIZE_CHARS = 8192


def encode_texts(loaded: LoadedVersion, texts: list[str], max_texts: int) -> list[Encoded]:
    """Word ids of each text, or InvalidInput naming the first text at fault."""
    if len(texts) > max_texts:
        raise InvalidInput("texts", f"{len(texts)} texts, at most {max_texts} per request")
    rules = TextRules.of(loaded.artifacts, loaded.settings)
    encoded = []
    for i, text in enumerate(texts):
        item = rules.encode(text)
        if isinstance(item, str):
            raise InvalidInput(f"texts.{i}", item)
        encoded.append(item)
    return encoded


async def encode_texts_off_loop(
    loaded: LoadedVersion, texts: list[str], max_texts: int
) -> list[Encoded]:
    """encode_texts, on the tokenizer thread when the request is large."""
    if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
        return encode_texts(loaded, texts, max_texts)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(loaded.tokenizer_pool, encode_texts, loaded, texts, max_texts)


@dataclass(frozen=True)
class Classified:
    ref: ModelRef
    labels: list[str]
    encoded: list[Encoded]
    probabilities: np.ndarray  # [texts, labels], float32
    best: list[int]  # index of each text's most probable label

    def predictions(self) -> list[dict[str, Any]]:
        return [
            prediction(self.labels, item, row, top)
            for item, top, row in zip(
                self.encoded, self.best, self.probabilities.tolist(), strict=True
            )
        ]

    def best_labels(self) -> list[str]:
        return [self.labels[index] for index in self.best]


def _count(labels: list[str], best: list[int], encoded: list[Encoded]) -> None:
    """Predictions per label, and truncated texts, in the metrics."""
    for index, count in Counter(best).items():
        metrics.predictions(labels[index]).inc(count)
    truncated = sum(item.truncated for item in encoded)
    if truncated:
        metrics.TRUNCATED.inc(truncated)


async def classify_texts(
    loaded: LoadedVersion, texts: list[str], client_gone: Callable[[], bool]
) -> Classified:
    """A label per text, all of them batched with concurrent requests' texts.

    Raises InvalidInput, Overloaded, ClientGone (dropped unrun) or BatchFailed.
    """
    encoded = await encode_texts_off_loop(loaded, texts, loaded.settings.max_texts_per_request)
    probabilities = await loaded.runner.submit([item.ids for item in encoded], client_gone)
    best: list[int] = probabilities.argmax(axis=1).tolist()
    labels = loaded.artifacts.labels
    _count(labels, best, encoded)
    return Classified(loaded.ref, labels, encoded, probabilities, best)
