"""What REST answers per text: a prediction, and an explanation (from app/infer/explanation.py's
plain data, read by attribute).

Pydantic models, so the response schemas and the OpenAPI document use them as they are;
predictions are built as plain dicts of the same shape (`predictions`), which serialize faster.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.tokenizer import Encoded
from app.infer.classify import Classified


class _FromData(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Prediction(_FromData):
    label: str = Field(description="The most probable label")
    score: float = Field(description="Probability of `label`")
    probabilities: dict[str, float] = Field(description="Probability of every label; they sum to 1")
    truncated: bool = Field(description="True when the text was cut to the model's max length")
    tokens: int = Field(description="Word tokens in the text, before truncation")


class InputLayer(_FromData):
    tokens: list[str] = Field(description="Word tokens the model reads (after truncation)")
    ids: list[int] = Field(description="Their vocabulary ids")
    unknown: list[bool] = Field(description="True where the word is not in the vocabulary (<unk>)")
    truncated: bool


class EmbeddingLayer(_FromData):
    shape: list[int] = Field(description="[tokens, embedding size]")
    norms: list[float] = Field(description="L2 norm of each token's embedding vector")


class RnnLayer(_FromData):
    shape: list[int] = Field(description="[time steps, hidden size x directions]")
    step_norms: list[float] = Field(description="L2 norm of the hidden state at each time step")
    pooling: str = Field(description="How the time steps become one feature vector")
    pooled_features: int = Field(description="Size of the pooled feature vector")


class DenseLayer(_FromData):
    logits: dict[str, float] = Field(
        description="Class scores before softmax: the dense layer's, plus the n-gram branch's "
        "(`ngrams.logits`) in a model that has one"
    )


class NgramLayer(_FromData):
    logits: dict[str, float] = Field(
        description="The n-gram branch's class scores (the mean over the text's words and hashed "
        "word pairs), already added into `dense.logits`; the RNN's part is the difference"
    )
    buckets: int = Field(description="Hash buckets the word pairs share")


class SoftmaxLayer(_FromData):
    probabilities: dict[str, float]
    label: str


class Layers(_FromData):
    input: InputLayer
    embedding: EmbeddingLayer
    rnn: RnnLayer
    dense: DenseLayer
    ngrams: NgramLayer | None = Field(
        default=None, description="The n-gram branch beside the RNN; null in a model without one"
    )
    softmax: SoftmaxLayer


class Explanation(Prediction):
    layers: Layers
    attributions: dict[str, list[float]] = Field(
        description="Per label, one value per input token: how much that label's probability "
        "drops when the token is replaced by <unk> (negative: the label gains without it)"
    )


def prediction(
    labels: list[str], item: Encoded, row: list[float], best: int | None = None
) -> dict[str, Any]:
    """One text's prediction as a dict of the shape of `Prediction` (which validating would slow)."""
    if best is None:
        best = max(range(len(row)), key=row.__getitem__)
    return {
        "label": labels[best],
        "score": row[best],
        "probabilities": dict(zip(labels, row, strict=True)),
        "truncated": item.truncated,
        "tokens": item.num_tokens,
    }


def predictions(classified: Classified) -> list[dict[str, Any]]:
    return [
        prediction(classified.labels, item, row, top)
        for item, top, row in zip(
            classified.encoded, classified.best, classified.probabilities.tolist(), strict=True
        )
    ]
