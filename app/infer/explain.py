"""The /explain flow: validate and tokenize, take an explanation slot, explain on a worker thread."""

import asyncio
import time

from app import metrics
from app.infer.classify import encode_texts_off_loop
from app.infer.explanation import Explanation
from app.infer.occlusion import explain
from app.lifecycle.state import ExplainSlots
from app.lifecycle.version import LoadedVersion


async def explanations_for(
    loaded: LoadedVersion, texts: list[str], slots: ExplainSlots
) -> list[Explanation]:
    """The explanations of up to MAX_EXPLAIN_TEXTS texts, computed on a worker thread so the event
    loop keeps serving; not through the batching queue, so /classify is not starved.

    Raises InvalidInput or Overloaded.
    """
    encoded = await encode_texts_off_loop(loaded, texts, loaded.settings.max_explain_texts)
    artifacts = loaded.artifacts
    with slots.take():
        started = time.perf_counter()
        results = await asyncio.to_thread(
            explain, loaded.engine, artifacts.architecture, artifacts.labels, texts, encoded
        )
        metrics.EXPLAIN_LATENCY.observe(time.perf_counter() - started)
    return results
