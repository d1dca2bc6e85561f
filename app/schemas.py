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
