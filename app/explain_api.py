"""POST /explain: the prediction layer by layer, with token attributions (app/explain.py).

An explanation costs one forward pass over every token-occluded copy of each text, tens of times
a classification. It must not starve /classify, so it does not go through the batching queue: it
runs on a worker thread (the event loop keeps serving), at most MAX_CONCURRENT_EXPLAIN at once
per worker, and a request past that bound gets its own 429 at once rather than waiting.
"""

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from app import metrics
from app.dependencies import ModelDep
from app.errors import ERROR_RESPONSES, ServiceError
from app.explain import explain
from app.pipeline import encode_texts_off_loop
from app.schemas import ExplainRequest, ExplainResponse, ModelRef


class ExplainSlots:
    """Explanations computing now, bounded; touched only on the event loop, so no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0

    @contextmanager
    def take(self) -> Iterator[None]:
        if self.busy >= self.limit:
            raise ServiceError(
                429,
                "overloaded",
                f"{self.busy} explanations running (MAX_CONCURRENT_EXPLAIN={self.limit}); "
                "retry later",
                headers={"Retry-After": "1"},
            )
        self.busy += 1
        metrics.EXPLAIN_IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.busy -= 1
            metrics.EXPLAIN_IN_FLIGHT.dec()


_RESPONSES = {
    **ERROR_RESPONSES,
    422: {
        **ERROR_RESPONSES[422],
        "description": "validation: wrong types, empty list, more than MAX_EXPLAIN_TEXTS texts, "
        "empty or over-long text",
    },
    429: {
        **ERROR_RESPONSES[429],
        "description": "overloaded: MAX_CONCURRENT_EXPLAIN explanations are running; retry after "
        "the Retry-After header's seconds (/classify is not affected)",
    },
}


def install_explain(app: FastAPI, max_concurrent: int) -> None:
    slots = ExplainSlots(max_concurrent)

    @app.post(
        "/explain",
        response_model=ExplainResponse,
        responses=_RESPONSES,
        summary="Explain predictions layer by layer",
        tags=["explain"],
    )
    async def explain_texts(body: ExplainRequest, model: ModelDep) -> ExplainResponse:
        """The answer /classify gives, plus each text's path through the five layers (input,
        embedding, RNN, dense, softmax) and per-token attributions toward every label: how much
        the label's probability drops when the token is replaced by `<unk>`."""
        encoded = await encode_texts_off_loop(model, body.texts, model.settings.max_explain_texts)
        artifacts = model.artifacts
        with slots.take():
            started = time.perf_counter()
            results = await asyncio.to_thread(
                explain, artifacts.model, artifacts.labels, body.texts, encoded
            )
            metrics.EXPLAIN_LATENCY.observe(time.perf_counter() - started)
        return ExplainResponse(
            model=ModelRef(name=artifacts.name, version=artifacts.version), results=results
        )
