"""Request and response bodies of the HTTP API (they also make the OpenAPI schema and /docs)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.infer.results import Explanation, ModelRef, Prediction


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "texts": [
                        "A gripping, beautifully acted film.",
                        "Two hours I will never get back.",
                    ]
                },
            ]
        },
    )
    texts: list[str] = Field(
        min_length=1, description="Texts to classify, 1 to MAX_TEXTS_PER_REQUEST; none empty"
    )
    model: str | None = Field(
        None,
        description="The model to ask (GET /models lists them); default: the only one, or "
        "DEFAULT_MODEL",
    )
    version: str | None = Field(None, description="Its version; default: the highest loaded")


class ClassifyResponse(BaseModel):
    # The bundled model's answer to ClassifyRequest's example (a test of the docs checks it).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261128185045"},
                    "results": [
                        {
                            "label": "positive",
                            "score": 0.99,
                            "probabilities": {"negative": 0.01, "positive": 0.99},
                            "truncated": False,
                            "tokens": 7,
                        },
                        {
                            "label": "negative",
                            "score": 0.6307,
                            "probabilities": {"negative": 0.6307, "positive": 0.3693},
                            "truncated": False,
                            "tokens": 8,
                        },
                    ],
                }
            ]
        }
    )
    model: ModelRef
    results: list[Prediction] = Field(description="One per input text, in input order")


class ModelInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "rotten_tomatoes-gru",
                    "version": "20261128185045",
                    "labels": ["negative", "positive"],
                    "max_length": 40,
                    "vocab_size": 10037,
                    "parameters": 546908,
                    "architecture": {
                        "vocab_size": 10037,
                        "num_classes": 2,
                        "embedding_dim": 50,
                        "hidden_dim": 64,
                        "rnn_type": "gru",
                        "bidirectional": True,
                        "dropout": 0.5,
                        "pooling": "max_mean",
                        "num_layers": 1,
                    },
                    "metrics": {
                        "test_accuracy": 0.799,
                        "test_macro_f1": 0.7945,
                        "baseline_test_accuracy": 0.7797,
                        "best_epoch": 26,
                    },
                    "checksum": "551b7896ac75230a967293ed195ee93081c1abb83913b4f36a0f4f8cad762bd4",
                    "device": "cpu",
                    "engine": "onnx",
                }
            ]
        }
    )
    name: str
    version: str
    labels: list[str]
    max_length: int
    vocab_size: int
    parameters: int
    architecture: dict[str, Any]
    metrics: dict[str, Any] = Field(
        description="Measured at training time on the held-out test split"
    )
    checksum: str = Field(description="sha256 of the weights file")
    device: str
    engine: str = Field(description="The inference engine serving the model")


class VersionState(BaseModel):
    version: str | None = Field(description="None for a model with no version loaded")
    state: Literal["READY", "LOADING", "UNLOADING", "UNAVAILABLE"]
    reason: str | None = Field(None, description="Why it is not served")


class ModelState(BaseModel):
    name: str
    default: bool = Field(description="Requests that name no model get this one")
    versions: list[VersionState]


class ModelsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "models": [
                        {
                            "name": "rotten_tomatoes-gru",
                            "default": True,
                            "versions": [{"version": "20261128185045", "state": "READY"}],
                        }
                    ]
                }
            ]
        }
    )
    models: list[ModelState] = Field(description="Every model the server knows, by name")


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ready"}]})
    status: str


class ExplainRequest(ClassifyRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"texts": ["The film is tedious."]}]})
    texts: list[str] = Field(
        min_length=1, description="Texts to explain, 1 to MAX_EXPLAIN_TEXTS; none empty"
    )


class ExplainResponse(BaseModel):
    # The bundled model's answer to ExplainRequest's example (a test of /explain checks it).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261128185045"},
                    "results": [
                        {
                            "label": "negative",
                            "score": 0.9697,
                            "probabilities": {"negative": 0.9697, "positive": 0.0303},
                            "truncated": False,
                            "tokens": 5,
                            "layers": {
                                "input": {
                                    "tokens": ["the", "film", "is", "tedious", "."],
                                    "ids": [3, 17, 10, 672, 2],
                                    "unknown": [False, False, False, False, False],
                                    "truncated": False,
                                },
                                "embedding": {
                                    "shape": [5, 50],
                                    "norms": [7.3674, 9.883, 5.2015, 6.9879, 6.255],
                                },
                                "rnn": {
                                    "shape": [5, 128],
                                    "step_norms": [4.528, 4.6454, 5.0867, 6.7369, 5.4184],
                                    "pooling": "max_mean",
                                    "pooled_features": 256,
                                },
                                "dense": {"logits": {"negative": 1.7949, "positive": -1.6722}},
                                "softmax": {
                                    "probabilities": {"negative": 0.9697, "positive": 0.0303},
                                    "label": "negative",
                                },
                            },
                            "attributions": {
                                "negative": [0.0005, -0.0014, 0.0093, 0.4906, -0.0015],
                                "positive": [-0.0005, 0.0014, -0.0093, -0.4906, 0.0015],
                            },
                        }
                    ],
                }
            ]
        }
    )
    model: ModelRef
    results: list[Explanation] = Field(description="One per input text, in input order")
