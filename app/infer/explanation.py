"""An explanation as plain data: one text's prediction, its path through the layers, and the
occlusion attributions (app/infer/occlusion.py). Each protocol gives it its own shape (REST's
is app/api/results.py)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class InputLayer:
    tokens: list[str]  # the words the model reads, as written, after truncation
    ids: list[int]
    unknown: list[bool]  # where the word is not in the vocabulary
    truncated: bool


@dataclass(frozen=True)
class EmbeddingLayer:
    shape: list[int]  # [tokens, embedding size]
    norms: list[float]  # per token


@dataclass(frozen=True)
class RnnLayer:
    shape: list[int]  # [time steps, hidden size x directions]
    step_norms: list[float]
    pooling: str
    pooled_features: int


@dataclass(frozen=True)
class DenseLayer:
    logits: dict[str, float]  # the n-gram branch's included


@dataclass(frozen=True)
class NgramLayer:
    logits: dict[str, float]
    buckets: int


@dataclass(frozen=True)
class SoftmaxLayer:
    probabilities: dict[str, float]
    label: str


@dataclass(frozen=True)
class Layers:
    input: InputLayer
    embedding: EmbeddingLayer
    rnn: RnnLayer
    dense: DenseLayer
    ngrams: NgramLayer | None  # None in a model without the branch
    softmax: SoftmaxLayer


@dataclass(frozen=True)
class Explanation:
    label: str
    score: float
    probabilities: dict[str, float]
    truncated: bool
    tokens: int  # word tokens before truncation
    layers: Layers
    attributions: dict[str, list[float]]  # per label, per token: the probability it drops
