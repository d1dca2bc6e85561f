"""What each part of a model with the n-gram branch gets right on its own: the report's account of
the branch's share, so a user sees whether the RNN, the bag of n-grams or both carry the answer."""

import torch

from app.core.network import RNNClassifier
from training.corpus import Corpus
from training.evaluation import EVAL_BATCH_SIZE


@torch.inference_mode()
def part_accuracies(model: RNNClassifier, data: Corpus) -> dict[str, float] | None:
    """Accuracy of the RNN alone (its dense layer, bias included), of the branch alone and of
    both (the served logits); None for a model without the branch."""
    if model.ngrams is None:
        return None
    model.eval()
    correct = {"rnn_alone": 0, "ngrams_alone": 0, "both": 0}
    for start in range(0, len(data), EVAL_BATCH_SIZE):
        ids, lengths, targets = data.batch(range(start, min(start + EVAL_BATCH_SIZE, len(data))))
        rnn, ngrams = model.parts(model.embedding(ids), lengths, ids)
        assert ngrams is not None
        for part, logits in (("rnn_alone", rnn), ("ngrams_alone", ngrams), ("both", rnn + ngrams)):
            correct[part] += int((logits.argmax(dim=1) == targets).sum())
    return {part: round(count / len(data), 4) for part, count in correct.items()}
