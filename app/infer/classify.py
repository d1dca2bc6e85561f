"""One classify flow for every protocol: validate and tokenize the texts, run them through the
queue, and hand back the probabilities and the chosen labels as plain data.

REST (/classify and its fast path) and the Open Inference Protocol each format the result their
own way and map the errors of app/errors.py to their own answers.
"""

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from app import metrics
from app.core.tokenizer import UNK_ID, Encoded
from app.errors import InvalidInput
from app.lifecycle.registry import ModelRegistry
from app.lifecycle.version import LoadedVersion, ModelRef

# Up to this many characters in a request are tokenized on the event loop (about 1 ms here);
# more go to the tokenizer thread, so a few large requests cannot stall every other one (and
# the liveness probe). Below it the thread hop would cost more than the tokenizing.
INLINE_TOKENIZE_CHARS = 8192


def encode_texts(loaded: LoadedVersion, texts: list[str], max_texts: int) -> list[Encoded]:
    """Word ids of each text, or InvalidInput naming the first text at fault."""
    if len(texts) > max_texts:
        raise InvalidInput("texts", f"{len(texts)} texts, at most {max_texts} per request")
    rules = loaded.rules
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


@dataclass(frozen=True, slots=True)
class Classified:
    ref: ModelRef
    labels: list[str]
    encoded: list[Encoded]
    probabilities: np.ndarray  # [texts, labels], float32
    best: list[int]  # index of each text's most probable label

    def best_labels(self) -> list[str]:
        return [self.labels[index] for index in self.best]


def _count(loaded: LoadedVersion, best: list[int], classified: "Classified") -> None:
    """Predictions per label, truncated texts, and what each text tells of how familiar the model
    is with it (unknown words, top probability), in the metrics."""
    labels, counted = loaded.artifacts.labels, loaded.metrics
    if len(best) == 1:  # most requests: no tally to build
        counted.prediction(labels[best[0]]).inc()
    else:
        for index, count in Counter(best).items():
            counted.prediction(labels[index]).inc(count)
    truncated = 0
    for item, top in zip(
        classified.encoded, classified.probabilities.max(axis=1).tolist(), strict=True
    ):
        truncated += item.truncated
        counted.unknown_share.observe(item.ids.count(UNK_ID) / len(item.ids))
        counted.top_probability.observe(top)
    if truncated:
        metrics.TRUNCATED.inc(truncated)


async def classify_request(
    registry: ModelRegistry,
    model: str | None,
    version: str | None,
    texts: list[str],
    client_gone: Callable[[], bool],
    metadata: Mapping[str, str],
    protocol: str,
) -> Classified:
    """classify_texts on the version a request names (or the default, as the rollout routes it
    by the request's `metadata`), which it holds until answered. Raises UnknownModel, NotReady
    and what classify_texts raises."""
    with registry.use(model, version, metadata) as loaded:
        return await classify_texts(loaded, texts, client_gone, protocol)


async def classify_texts(
    loaded: LoadedVersion, texts: list[str], client_gone: Callable[[], bool], protocol: str
) -> Classified:
    """A label per text, all of them batched with concurrent requests' texts; counted per
    version under `protocol` (the metrics' name of the caller's protocol: rest or grpc).

    Raises InvalidInput, Overloaded, ClientGone (dropped unrun) or BatchFailed.
    """
    encoded = await encode_texts_off_loop(loaded, texts, loaded.settings.max_texts_per_request)
    sequences = [item.ids for item in encoded]
    probabilities = await loaded.runner.submit(sequences, client_gone)
    if loaded.on_answered is not None:
        loaded.on_answered(texts, probabilities)
    best: list[int] = probabilities.argmax(axis=1).tolist()
    classified = Classified(loaded.ref, loaded.artifacts.labels, encoded, probabilities, best)
    _count(loaded, best, classified)
    loaded.metrics.request(protocol).inc()
    return classified
