"""Bare ASGI server: the HTTP floor of the benchmark.

uvicorn (uvloop + httptools) with no framework: it reads the body, parses the JSON with orjson,
takes the texts and answers one fixed prediction per text. Any server of this API on one core pays
at least this much per request; what ours costs above it is routing, validation, tokenizing,
batching and the model.

    uvicorn --app-dir bench floor_server:app --port 8100
"""

from typing import Any

import orjson

_MODEL = {"name": "floor", "version": "0"}
_RESULT = {
    "label": "positive",
    "score": 0.75,
    "probabilities": {"negative": 0.25, "positive": 0.75},
    "truncated": False,
    "tokens": 1,
}
_JSON = (b"content-type", b"application/json")


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(len(body)).encode()), _JSON]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/health/ready":
        ready = b'{"status":"ready"}'
        await send({"type": "http.response.start", "status": 200, "headers": _headers(ready)})
        await send({"type": "http.response.body", "body": ready})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    texts = orjson.loads(body)["texts"]
    content = orjson.dumps({"model": _MODEL, "results": [_RESULT] * len(texts)})
    await send({"type": "http.response.start", "status": 200, "headers": _headers(content)})
    await send({"type": "http.response.body", "body": content})
