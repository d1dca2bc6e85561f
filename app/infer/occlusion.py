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

import torch

from app.core.network import RNNClassifier, collate
from app.core.tokenizer import UNK_ID, UNK_TOKEN, Encoded, split_words
from app.infer.results import (
    DenseLayer,
    EmbeddingLayer,
    Explanation,
    InputLayer,
    Layers,
    RnnLayer,
    SoftmaxLayer,
    prediction,
)


def occlusion_variants(ids: list[int]) -> list[list[int]]:
    """The text itself, then one copy per token with that token replaced by <unk>."""
    return [ids, *([*ids[:i], UNK_ID, *ids[i + 1 :]] for i in range(len(ids)))]


def input_words(text: str, encoded: Encoded) -> list[str]:
    """The words the model reads, as written (an unknown word shows as itself, not <unk>)."""
    return split_words(text)[: len(encoded.ids)] or [UNK_TOKEN]


@torch.inference_mode()
def explain(
    model: RNNClassifier, labels: list[str], texts: list[str], encoded: list[Encoded]
) -> list[Explanation]:
    """One explanation per text; runs on the device the torch model is on."""
    device = next(model.parameters()).device
    variants = [occlusion_variants(item.ids) for item in encoded]
    rows = [row for text_variants in variants for row in text_variants]
    probabilities = torch.softmax(model(*collate(rows, device)), dim=-1).float().cpu()
    trace = {
        name: tensor.float().cpu()
        for name, tensor in model.trace(*collate([i.ids for i in encoded], device)).items()
    }
    results, start = [], 0
    for index, (text, item) in enumerate(zip(texts, encoded, strict=True)):
        length = len(item.ids)
        # Row `start` is the text itself; the next `length` rows each lack one token.
        whole, occluded = probabilities[start], probabilities[start + 1 : start + 1 + length]
        start += length + 1
        drop = (whole - occluded).T  # [labels, tokens]
        embedded, steps = trace["embedding"][index, :length], trace["rnn_steps"][index, :length]
        answer = prediction(labels, item, trace["softmax"][index].tolist())
        logits = trace["dense"][index].tolist()
        layers = Layers(
            input=InputLayer(
                tokens=input_words(text, item),
                ids=item.ids,
                unknown=[i == UNK_ID for i in item.ids],
                truncated=item.truncated,
            ),
            embedding=EmbeddingLayer(
                shape=list(embedded.shape), norms=embedded.norm(dim=-1).tolist()
            ),
            rnn=RnnLayer(
                shape=list(steps.shape),
                step_norms=steps.norm(dim=-1).tolist(),
                pooling=model.config.pooling,
                pooled_features=trace["rnn"].shape[-1],
            ),
            dense=DenseLayer(logits=dict(zip(labels, logits, strict=True))),
            softmax=SoftmaxLayer(probabilities=answer["probabilities"], label=answer["label"]),
        )
        results.append(
            Explanation(
                **answer,
                layers=layers,
                attributions=dict(zip(labels, drop.tolist(), strict=True)),
            )
        )
    return results
