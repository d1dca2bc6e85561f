"""The steps every entry point shares: validate and tokenize texts, run them through the queue,
turn probabilities into predictions. Routes compose these; they hold no logic of their own."""

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from app import metrics
from app.errors import ServiceError
from app.queue import ClientGone, Overloaded
from app.runner import BatchFailed
from app.service import LoadedModel
from app.tokenizer import Encoded

# Up to this many characters in a request are tokenized on the event loop (about 1 ms here);
# more go to the tokenizer thread, so a few large requests cannot stall every other one (and
# the liveness probe). Below it the thread hop would cost more than the tokenizing.
INLINE_TOKENIZE_CHARS = 8192


def encode_texts(model: LoadedModel, texts: list[str], max_texts: int) -> list[Encoded]:
    """Word ids of each text, or a 422 ServiceError naming the first text at fault."""
    settings, artifacts = model.settings, model.artifacts
    if len(texts) > max_texts:
        raise ServiceError(
            422, "validation", f"texts: {len(texts)} texts, at most {max_texts} per request"
        )
    encoded = []
    for i, text in enumerate(texts):
        if not text.strip():
            raise ServiceError(422, "validation", f"texts.{i}: empty or whitespace-only text")
        if len(text) > settings.max_text_chars:
            raise ServiceError(
                422,
                "validation",
                f"texts.{i}: {len(text)} characters, at most {settings.max_text_chars}",
            )
        item = artifacts.tokenizer.encode(text, artifacts.max_length)
        if item.truncated and settings.truncation == "reject":
            raise ServiceError(
                422,
                "validation",
                f"texts.{i}: {item.num_tokens} tokens, the model "
                f"reads at most {artifacts.max_length} (TRUNCATION=reject)",
            )
        encoded.append(item)
    return encoded


async def encode_texts_off_loop(
    model: LoadedModel, texts: list[str], max_texts: int
) -> list[Encoded]:
    """encode_texts, on the tokenizer thread when the request is large."""
    if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
        return encode_texts(model, texts, max_texts)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(model.tokenizer_pool, encode_texts, model, texts, max_texts)


async def probabilities_for(
    model: LoadedModel, encoded: list[Encoded], client_gone: Callable[[], bool]
) -> np.ndarray:
    """[texts, labels] probabilities from the batched model; queue failures as ServiceErrors.

    ClientGone passes through: there is nobody to answer.
    """
    try:
        return await model.runner.submit([item.ids for item in encoded], client_gone)
    except Overloaded as exc:
        raise ServiceError(
            429,
            "overloaded",
            f"server busy: {exc}; retry later",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    except BatchFailed as exc:
        raise ServiceError(500, "internal", f"inference failed (error id {exc.error_id})") from exc


def prediction(
    labels: list[str], item: Encoded, row: list[float], best: int | None = None
) -> dict[str, Any]:
    """One text's prediction, the shape of schemas.Prediction (shared with app/explain.py)."""
    if best is None:
        best = max(range(len(row)), key=row.__getitem__)
    return {
        "label": labels[best],
        "score": row[best],
        "probabilities": dict(zip(labels, row, strict=True)),
        "truncated": item.truncated,
        "tokens": item.num_tokens,
    }


def best_indices(
    model: LoadedModel, encoded: list[Encoded], probabilities: np.ndarray
) -> list[int]:
    """Index of each text's most probable label, counted in the metrics (per label, truncated)."""
    best: list[int] = probabilities.argmax(axis=1).tolist()
    labels = model.artifacts.labels
    for index, count in Counter(best).items():
        metrics.predictions(labels[index]).inc(count)
    truncated = sum(item.truncated for item in encoded)
    if truncated:
        metrics.TRUNCATED.inc(truncated)
    return best


def predictions(
    model: LoadedModel, encoded: list[Encoded], probabilities: np.ndarray
) -> list[dict[str, Any]]:
    """One prediction per text, counted in the metrics."""
    labels = model.artifacts.labels
    best = best_indices(model, encoded, probabilities)
    return [
        prediction(labels, item, row, top)
        for item, top, row in zip(encoded, best, probabilities.tolist(), strict=True)
    ]


async def classify_response(
    model: LoadedModel, texts: list[str], client_gone: Callable[[], bool]
) -> Response:
    """The answer of /classify: a label per text, all of them batched with concurrent requests."""
    encoded = await encode_texts_off_loop(model, texts, model.settings.max_texts_per_request)
    try:
        probabilities = await probabilities_for(model, encoded, client_gone)
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
    artifacts = model.artifacts
    # orjson, not the response model: serializing through pydantic costs more than the model.
    content = orjson.dumps(
        {
            "model": {"name": artifacts.name, "version": artifacts.version},
            "results": predictions(model, encoded, probabilities),
        }
    )
    return Response(content, media_type="application/json")
