"""The usual FastAPI model server: the model called per request, inside an `async def` handler.

Same artifacts (app.artifacts.load_artifacts), same tokenizer, same padding (app.model.collate) and
the same request/response schema as the service, but no batching across requests and no
off-loop inference: each request runs its own forward pass on the event loop. torch uses one
intra-op thread, as the service does when pinned to one core.

    MODEL_DIR=runs/seed uvicorn --app-dir bench naive_server:app --port 8103
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, HTTPException, Request

from app.api.results import Prediction, prediction
from app.api.schemas import ClassifyRequest, ClassifyResponse, Health
from app.core.artifacts import Artifacts, load_artifacts
from app.core.network import collate, from_weights
from app.lifecycle.version import ModelRef


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    app.state.artifacts = load_artifacts(Path(os.environ.get("MODEL_DIR", "model_artifacts")))
    app.state.network = from_weights(app.state.artifacts.architecture, app.state.artifacts.weights)
    yield


app = FastAPI(title="naive classifier (benchmark baseline)", lifespan=lifespan)


@app.post("/classify", response_model=ClassifyResponse)
async def classify(body: ClassifyRequest, request: Request) -> Any:
    artifacts: Artifacts = request.app.state.artifacts
    encoded = [artifacts.tokenizer.encode(text, artifacts.max_length) for text in body.texts]
    ids, lengths = collate([item.ids for item in encoded])
    with torch.inference_mode():
        probabilities = torch.softmax(request.app.state.network(ids, lengths), dim=-1).tolist()
    results = [
        Prediction(**prediction(artifacts.labels, item, row))
        for item, row in zip(encoded, probabilities, strict=True)
    ]
    return ClassifyResponse(
        model=ModelRef(name=artifacts.name, version=artifacts.version), results=results
    )


@app.get("/health/ready", response_model=Health)
async def ready(request: Request) -> Health:
    if getattr(request.app.state, "artifacts", None) is None:
        raise HTTPException(503, "not ready")
    return Health(status="ready")
