"""Why the model said what it said: a prediction layer by layer, with token attributions.

One implementation for POST /explain and `python -m app.trace`.

Attributions are by occlusion: each token in turn is replaced by <unk> and the text scored again;
a token's attribution toward a label is how much that label's probability drops without it
(negative: the label gains). All variants of all texts run as one batched forward pass.
Chosen over integrated gradients because <unk> is an input the model was trained on (rare words,
and word dropout, map there), while integrated gradients' zero-embedding baseline is one it never
saw; because it needs forward passes only, the serving path under inference mode, no gradients
through the packed RNN; and because a text of L <= max_length tokens costs L + 1 rows of one
batch, where integrated gradients takes tens of gradient steps per text. Its limit: it removes one
token at a time, so two words that stand in for each other each look weaker than they are.
"""

import numpy as np

from app.core.architecture import ModelConfig
from app.core.tokenizer import UNK_ID, UNK_TOKEN, Encoded, split_words
from app.engines.base import Engine, Trace
from app.infer.explanation import (
    DenseLayer,
    EmbeddingLayer,
    Explanation,
    InputLayer,
    Layers,
    NgramLayer,
    RnnLayer,
    SoftmaxLayer,
)


def occlusion_variants(ids: list[int]) -> list[list[int]]:
    """The text itself, then one copy per token with that token replaced by <unk>."""
    return [ids, *([*ids[:i], UNK_ID, *ids[i + 1 :]] for i in range(len(ids)))]


def input_words(text: str, encoded: Encoded) -> list[str]:
    """The words the model reads, as written (an unknown word shows as itself, not <unk>)."""
    return split_words(text)[: len(encoded.ids)] or [UNK_TOKEN]


def _layers(
    text: str, item: Encoded, trace: Trace, index: int, architecture: ModelConfig, labels: list[str]
) -> Layers:
    length = len(item.ids)
    embedded, steps = trace.embedding[index, :length], trace.rnn_steps[index, :length]
    probabilities = trace.probabilities[index].tolist()
    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    ngrams = None
    if trace.ngram_logits is not None:
        scores = dict(zip(labels, trace.ngram_logits[index].tolist(), strict=True))
        ngrams = NgramLayer(logits=scores, buckets=architecture.ngram_buckets)
    return Layers(
        input=InputLayer(
            tokens=input_words(text, item),
            ids=item.ids,
            unknown=[i == UNK_ID for i in item.ids],
            truncated=item.truncated,
        ),
        embedding=EmbeddingLayer(
            shape=list(embedded.shape), norms=np.linalg.norm(embedded, axis=-1).tolist()
        ),
        rnn=RnnLayer(
            shape=list(steps.shape),
            step_norms=np.linalg.norm(steps, axis=-1).tolist(),
            pooling=architecture.pooling,
            pooled_features=architecture.pooled_features,
        ),
        dense=DenseLayer(logits=dict(zip(labels, trace.logits[index].tolist(), strict=True))),
        ngrams=ngrams,
        softmax=SoftmaxLayer(
            probabilities=dict(zip(labels, probabilities, strict=True)), label=labels[best]
        ),
    )


def explain(
    engine: Engine,
    architecture: ModelConfig,
    labels: list[str],
    texts: list[str],
    encoded: list[Encoded],
) -> list[Explanation]:
    """One explanation per text: every occluded copy of every text in one batched prediction,
    and one traced forward pass of the texts themselves."""
    variants = [occlusion_variants(item.ids) for item in encoded]
    probabilities = engine.predict([row for text_variants in variants for row in text_variants])
    trace = engine.trace([item.ids for item in encoded])
    results, start = [], 0
    for index, (text, item) in enumerate(zip(texts, encoded, strict=True)):
        length = len(item.ids)
        # Row `start` is the text itself; the next `length` rows each lack one token.
        whole, occluded = probabilities[start], probabilities[start + 1 : start + 1 + length]
        start += length + 1
        drop = (whole - occluded).T  # [labels, tokens]
        layers = _layers(text, item, trace, index, architecture, labels)
        results.append(
            Explanation(
                label=layers.softmax.label,
                score=layers.softmax.probabilities[layers.softmax.label],
                probabilities=layers.softmax.probabilities,
                truncated=item.truncated,
                tokens=item.num_tokens,
                layers=layers,
                attributions=dict(zip(labels, drop.tolist(), strict=True)),
            )
        )
    return results
