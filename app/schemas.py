"""Request and response bodies of the HTTP API (they also make the OpenAPI schema and /docs)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class Prediction(BaseModel):
    label: str = Field(description="The most probable label")
    score: float = Field(description="Probability of `label`")
    probabilities: dict[str, float] = Field(description="Probability of every label; they sum to 1")
    truncated: bool = Field(description="True when the text was cut to the model's max length")
    tokens: int = Field(description="Word tokens in the text, before truncation")


class ModelRef(BaseModel):
    name: str
    version: str


class ClassifyResponse(BaseModel):
    # The bundled model's answer to ClassifyRequest's example (tests/test_docs_ui.py checks it).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261128171717"},
                    "results": [
                        {
                            "label": "positive",
                            "score": 0.995,
                            "probabilities": {"negative": 0.005, "positive": 0.995},
                            "truncated": False,
                            "tokens": 7,
                        },
                        {
                            "label": "negative",
                            "score": 0.6778,
                            "probabilities": {"negative": 0.6778, "positive": 0.3222},
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
                    "version": "20261128171717",
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
                    },
                    "metrics": {
                        "test_accuracy": 0.795,
                        "test_macro_f1": 0.7903,
                        "baseline_test_accuracy": 0.7797,
                        "best_epoch": 34,
                    },
                    "checksum": "6a88ba0434d5a5cc7ae5e99b8886827c4c96ab97f87971b6832906617311340c",
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


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ready"}]})
    status: str


class ExplainRequest(ClassifyRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"texts": ["The film is tedious."]}]})
    texts: list[str] = Field(
        min_length=1, description="Texts to explain, 1 to MAX_EXPLAIN_TEXTS; none empty"
    )


class InputLayer(BaseModel):
    tokens: list[str] = Field(description="Word tokens the model reads (after truncation)")
    ids: list[int] = Field(description="Their vocabulary ids")
    unknown: list[bool] = Field(description="True where the word is not in the vocabulary (<unk>)")
    truncated: bool


class EmbeddingLayer(BaseModel):
    shape: list[int] = Field(description="[tokens, embedding size]")
    norms: list[float] = Field(description="L2 norm of each token's embedding vector")


class RnnLayer(BaseModel):
    shape: list[int] = Field(description="[time steps, hidden size x directions]")
    step_norms: list[float] = Field(description="L2 norm of the hidden state at each time step")
    pooling: str = Field(description="How the time steps become one feature vector")
    pooled_features: int = Field(description="Size of the pooled feature vector")


class DenseLayer(BaseModel):
    logits: dict[str, float] = Field(description="Class scores before softmax")


class SoftmaxLayer(BaseModel):
    probabilities: dict[str, float]
    label: str


class Layers(BaseModel):
    input: InputLayer
    embedding: EmbeddingLayer
    rnn: RnnLayer
    dense: DenseLayer
    softmax: SoftmaxLayer


class Explanation(Prediction):
    layers: Layers
    attributions: dict[str, list[float]] = Field(
        description="Per label, one value per input token: how much that label's probability "
        "drops when the token is replaced by <unk> (negative: the label gains without it)"
    )


class ExplainResponse(BaseModel):
    # The bundled model's answer to ExplainRequest's example (tests/test_explain_api.py checks it).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261128171717"},
                    "results": [
                        {
                            "label": "negative",
                            "score": 0.9785,
                            "probabilities": {"negative": 0.9785, "positive": 0.0215},
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
                                    "norms": [6.9666, 10.4541, 5.4871, 6.9903, 5.2807],
                                },
                                "rnn": {
                                    "shape": [5, 128],
                                    "step_norms": [5.4775, 5.7469, 5.8603, 7.0377, 5.8193],
                                    "pooling": "max_mean",
                                    "pooled_features": 256,
                                },
                                "dense": {"logits": {"negative": 1.8674, "positive": -1.9499}},
                                "softmax": {
                                    "probabilities": {"negative": 0.9785, "positive": 0.0215},
                                    "label": "negative",
                                },
                            },
                            "attributions": {
                                "negative": [0.0014, 0.0013, 0.0006, 0.5177, -0.0025],
                                "positive": [-0.0014, -0.0013, -0.0006, -0.5177, 0.0025],
                            },
                        }
                    ],
                }
            ]
        }
    )
    model: ModelRef
    results: list[Explanation] = Field(description="One per input text, in input order")
