"""No-op FastAPI server: the same /classify request and response schema, a fixed answer, no model.

It is the HTTP ceiling of the benchmark: what FastAPI + uvicorn on one core can do when the model
costs nothing. It parses and validates the request with the service's own pydantic model and
serializes with orjson like the service does, so the only thing it leaves out is the model
(tokenizer, batcher, forward pass).

    uvicorn --app-dir bench noop_server:app --port 8101
"""

import orjson
from fastapi import FastAPI, Response

from app.api.schemas import ClassifyRequest, ClassifyResponse, Health

app = FastAPI(title="no-op classifier (benchmark ceiling)")

_MODEL = {"name": "noop", "version": "0"}
_RESULT = {
    "label": "positive",
    "score": 0.75,
    "probabilities": {"negative": 0.25, "positive": 0.75},
    "truncated": False,
    "tokens": 1,
}
# Checked once at import: the fixed answer is a valid ClassifyResponse.
ClassifyResponse.model_validate({"model": _MODEL, "results": [_RESULT]})


@app.post("/classify", response_model=ClassifyResponse)
async def classify(body: ClassifyRequest) -> Response:
    content = orjson.dumps({"model": _MODEL, "results": [_RESULT] * len(body.texts)})
    return Response(content, media_type="application/json")


@app.get("/health/ready", response_model=Health)
async def ready() -> Health:
    return Health(status="ready")
