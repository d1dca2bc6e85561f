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
    model: ModelRef
    results: list[Prediction] = Field(description="One per input text, in input order")


class ModelInfo(BaseModel):
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
    status: str
