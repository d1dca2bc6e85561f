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
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261202000231"},
                    "results": [
                        {
                            "label": "positive",
                            "score": 0.9889,
                            "probabilities": {"negative": 0.0111, "positive": 0.9889},
                            "truncated": False,
                            "tokens": 7,
                        },
                        {
                            "label": "negative",
                            "score": 0.6823,
                            "probabilities": {"negative": 0.6823, "positive": 0.3177},
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
                    "version": "20261202000231",
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
                        "test_accuracy": 0.8006,
                        "test_macro_f1": 0.7965,
                        "baseline_test_accuracy": 0.7797,
                        "best_epoch": 35,
                        "test_ece": 0.0305,
                        "test_nll": 0.4349,
                        "out_of_domain_ece": 0.0556,
                        "out_of_domain_nll": 0.5317,
                    },
                    "checksum": "4d1ed4408bb0734ee17364d12e8b7ed5033cabd3a7876831b30ea86fac43d191",
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
                            "versions": [{"version": "20261202000231", "state": "READY"}],
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
                    "model": {"name": "rotten_tomatoes-gru", "version": "20261202000231"},
                    "results": [
                        {
                            "label": "negative",
                            "score": 0.9441,
                            "probabilities": {"negative": 0.9441, "positive": 0.0559},
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
                                    "norms": [6.7156, 10.1839, 5.4079, 6.8171, 5.5329],
                                },
                                "rnn": {
                                    "shape": [5, 128],
                                    "step_norms": [4.5596, 4.6095, 4.8473, 6.3766, 5.2612],
                                    "pooling": "max_mean",
                                    "pooled_features": 256,
                                },
                                "dense": {"logits": {"negative": 1.4258, "positive": -1.4009}},
                                "softmax": {
                                    "probabilities": {"negative": 0.9441, "positive": 0.0559},
                                    "label": "negative",
                                },
                            },
                            "attributions": {
                                "negative": [0.0031, 0.004, 0.0215, 0.5242, -0.0025],
                                "positive": [-0.0031, -0.004, -0.0215, -0.5242, 0.0025],
                            },
                        }
                    ],
                }
            ]
        }
    )
    model: ModelRef
    results: list[Explanation] = Field(description="One per input text, in input order")
