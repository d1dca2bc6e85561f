"""What a model gets right on labelled data: class scores in batches, and the validation scores
that pick the epoch to keep."""

from dataclasses import dataclass

import torch
from sklearn.metrics import f1_score
from torch import nn

from app.core.network import RNNClassifier, collate
from training.corpus import Corpus

EVAL_BATCH_SIZE = 256


@torch.inference_mode()
def predict_logits(model: RNNClassifier, ids: list[list[int]] | Corpus) -> torch.Tensor:
    """Class scores [N, C] in eval mode, in batches, on the CPU wherever the model is."""
    model.eval()
    device = next(model.parameters()).device
    starts = range(0, len(ids), EVAL_BATCH_SIZE)
    if isinstance(ids, Corpus):
        ends = (min(i + EVAL_BATCH_SIZE, len(ids)) for i in starts)
        batches = [ids.batch(range(i, end))[:2] for i, end in zip(starts, ends, strict=True)]
    else:
        batches = [collate(ids[i : i + EVAL_BATCH_SIZE]) for i in starts]
    return torch.cat([model(batch_ids.to(device), lengths) for batch_ids, lengths in batches]).cpu()


def evaluate(model: RNNClassifier, data: Corpus) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on labelled data."""
    scores = validate(model, data)
    return scores.loss, scores.accuracy


@dataclass(frozen=True)
class Scores:
    loss: float  # mean cross-entropy (unweighted: the probabilities' own quality)
    accuracy: float
    macro_f1: float


def validate(model: RNNClassifier, data: Corpus) -> Scores:
    logits = predict_logits(model, data)
    targets = torch.from_numpy(data.labels)
    predicted = logits.argmax(dim=1)
    macro_f1 = f1_score(
        targets.numpy(),
        predicted.numpy(),
        labels=list(range(logits.shape[1])),
        average="macro",
        zero_division=0,
    )
    return Scores(
        nn.functional.cross_entropy(logits, targets).item(),
        float((predicted == targets).float().mean()),
        float(macro_f1),
    )


def selection_key(scores: Scores, by_macro_f1: bool) -> tuple[float, ...]:
    """Lower is better. With class weights, the epoch whose predictions serve every class best
    (validation macro-F1) is kept, the loss breaking ties; otherwise the validation loss alone."""
    return (-round(scores.macro_f1, 4), scores.loss) if by_macro_f1 else (scores.loss,)
