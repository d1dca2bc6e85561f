"""Request and response bodies of the HTTP API (they also make the OpenAPI schema and /docs)."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.results import Explanation, Prediction
from app.lifecycle.validation import NOT_EMPTY_PATTERN
from app.lifecycle.version import ModelRef

# A text as the document declares it: not empty or whitespace-only. Only the docs carry it: the
# classify flow (app/lifecycle/validation.py) refuses such a text, with its own words.
Text = Annotated[str, Field(json_schema_extra={"minLength": 1, "pattern": NOT_EMPTY_PATTERN})]


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
    texts: list[Text] = Field(
        min_length=1,
        description="Texts to classify, 1 to MAX_TEXTS_PER_REQUEST; none empty or whitespace-only",
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
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261207130807"},
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
                            "score": 0.6145,
                            "probabilities": {"negative": 0.6145, "positive": 0.3855},
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
                    "version": "20261207130807",
                    "labels": ["negative", "positive"],
                    "max_length": 40,
                    "vocab_size": 10037,
                    "parameters": 813254,
                    "architecture": {
                        "vocab_size": 10037,
                        "num_classes": 2,
                        "embedding_dim": 50,
                        "hidden_dim": 48,
                        "rnn_type": "gru",
                        "bidirectional": True,
                        "dropout": 0.5,
                        "pooling": "max_mean",
                        "num_layers": 1,
                        "ngram_buckets": 131072,
                        "ngram_hashing": "word-id-pairs-v2",
                    },
                    "metrics": {
                        "test_accuracy": 0.7966,
                        "test_macro_f1": 0.7917,
                        "baseline_test_accuracy": 0.7797,
                        "best_epoch": 23,
                        "test_ece": 0.018,
                        "test_nll": 0.4334,
                        "out_of_domain_ece": 0.0513,
                        "out_of_domain_nll": 0.5252,
                    },
                    "checksum": "aacbbbf7c6b785b2c685c26be7926c93155171e7cc0b484b3ee4bf471cacf586",
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


class ShadowComparison(BaseModel):
    texts_compared: int = Field(description="Texts the live version answered and the shadow scored")
    texts_dropped: int = Field(description="Texts not scored because the shadow was behind")
    label_agreement: float | None = Field(
        description="Share of the compared texts given the same label by both"
    )
    top_probability_difference_mean: float | None = Field(
        description="Mean |live top probability - the shadow's probability of that label|"
    )
    top_probability_difference_max: float


class RolloutState(BaseModel):
    setting: dict[str, Any] = Field(
        description='The rollout in force: {"shadow": V}, {"canary": {...}}'
    )
    live: str | None = Field(description="The version requests without a version get")
    shadow: ShadowComparison | None = Field(
        None, description="With a shadow rollout: the live and shadow versions compared so far"
    )


class ModelState(BaseModel):
    name: str
    default: bool = Field(description="Requests that name no model get this one")
    versions: list[VersionState]
    rollout: RolloutState | None = Field(None, description="None: the highest version answers all")


class ModelsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "models": [
                        {
                            "name": "rotten_tomatoes-gru",
                            "default": True,
                            "versions": [{"version": "20261207130807", "state": "READY"}],
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
    texts: list[Text] = Field(
        min_length=1,
        description="Texts to explain, 1 to MAX_EXPLAIN_TEXTS; none empty or whitespace-only",
    )


class ExplainResponse(BaseModel):
    # The bundled model's answer to ExplainRequest's example (a test of /explain checks it).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261207130807"},
                    "results": [
                        {
                            "label": "negative",
                            "score": 0.9618,
                            "probabilities": {"negative": 0.9618, "positive": 0.0382},
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
                                    "norms": [6.4613, 10.4092, 5.2355, 6.8375, 5.7128],
                                },
                                "rnn": {
                                    "shape": [5, 96],
                                    "step_norms": [4.3841, 4.4962, 4.8003, 6.6225, 5.3683],
                                    "pooling": "max_mean",
                                    "pooled_features": 192,
                                },
                                "dense": {"logits": {"negative": 1.5994, "positive": -1.6264}},
                                "ngrams": {
                                    "logits": {"negative": 0.1648, "positive": -0.1648},
                                    "buckets": 131072,
                                },
                                "softmax": {
                                    "probabilities": {"negative": 0.9618, "positive": 0.0382},
                                    "label": "negative",
                                },
                            },
                            "attributions": {
                                "negative": [0.0025, -0.0049, 0.0141, 0.5203, 0.0093],
                                "positive": [-0.0025, 0.0049, -0.0141, -0.5203, -0.0093],
                            },
                        }
                    ],
                }
            ]
        }
    )
    model: ModelRef
    results: list[Explanation] = Field(description="One per input text, in input order")
