"""LitServe serving the same model as a peer: its own batching on, torch eager on one thread.

Same artifacts (app.artifacts.load_artifacts), tokenizer, padding (app.model.collate) and
request/response schema as the service. LitServe batches requests (max_batch_size, batch_timeout)
in its inference worker process; each request's texts are flattened into that batch, so a
32-text request counts 32 texts towards the forward pass as it does in ours.
Needs `pip install -e '.[bench]'` (a pinned litserve); bench/run.py starts it as

    MODEL_DIR=model_artifacts python bench/litserve_server.py --port 8104
"""

import argparse
import os
from pathlib import Path
from typing import Any

import litserve as ls
import torch

from app.api.results import Prediction, prediction
from app.api.schemas import ClassifyRequest, ClassifyResponse
from app.core.artifacts import Artifacts, load_artifacts
from app.core.network import collate, from_weights
from app.core.tokenizer import Encoded
from app.lifecycle.version import ModelRef

MAX_BATCH_SIZE = 64  # requests per forward pass, as ours' MAX_BATCH_SIZE default (texts)
BATCH_TIMEOUT_S = 0.002  # how long a batch may wait to fill

Answer = tuple[list[Encoded], list[list[float]]]  # one request's texts and their probabilities


class ClassifierAPI(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
        self.artifacts: Artifacts = load_artifacts(
            Path(os.environ.get("MODEL_DIR", "model_artifacts"))
        )
        self.network = from_weights(self.artifacts.architecture, self.artifacts.weights)

    def decode_request(self, request: ClassifyRequest) -> list[Encoded]:
        a = self.artifacts
        return [a.tokenizer.encode(text, a.max_length) for text in request.texts]

    def batch(self, requests: list[list[Encoded]]) -> list[list[Encoded]]:
        return requests

    def predict(self, requests: list[list[Encoded]]) -> list[Answer]:
        """One forward pass over every text of every request in the batch."""
        ids, lengths = collate([item.ids for encoded in requests for item in encoded])
        with torch.inference_mode():
            rows = torch.softmax(self.network(ids, lengths), dim=-1).tolist()
        answers, start = [], 0
        for encoded in requests:
            answers.append((encoded, rows[start : start + len(encoded)]))
            start += len(encoded)
        return answers

    def unbatch(self, output: list[Answer]) -> list[Answer]:
        return output

    def encode_response(self, output: Answer) -> dict[str, Any]:
        labels = self.artifacts.labels
        results = [
            Prediction(**prediction(labels, item, row)) for item, row in zip(*output, strict=True)
        ]
        model = ModelRef(name=self.artifacts.name, version=self.artifacts.version)
        return ClassifyResponse(model=model, results=results).model_dump()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    api = ClassifierAPI(
        max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S, api_path="/classify"
    )
    server = ls.LitServer(
        api, accelerator="cpu", workers_per_device=1, healthcheck_path="/health/ready"
    )
    server.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=1,
        log_level=args.log_level,
        generate_client_file=False,
    )


if __name__ == "__main__":
    main()
