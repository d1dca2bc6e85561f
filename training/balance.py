"""Class weights for skewed labels, and when to use them.

A model trained on plain cross-entropy over skewed labels learns that a rare class is rarely the
answer: accuracy barely notices, but that class's recall (and macro-F1) does. Weighting each
class's loss by texts / (classes x its texts) (scikit-learn's "balanced") makes every class weigh
the same in the loss in all, and leaves the average weight of a training text at 1.

Labels are skewed when the smallest class has under half the share an even split would give it
(2 classes: under 25%; 6 classes: under 8.3%): data that is merely uneven, like the bundled
reviews (42% negative), is not. Weights are off unless asked for (`--class-weight balanced`): on
the skewed 16-class health tweets (README) they cost 4 points of macro-F1, so skewed labels get
the validation-chosen logit adjustment (training/adjust.py) by default instead.
"""

from collections import Counter
from typing import Any, Literal

import torch

ClassWeight = Literal["none", "balanced"]
SKEW_SHARE = 0.5


def is_skewed(counts: list[int]) -> bool:
    """The smallest class holds under SKEW_SHARE of an even share of the texts."""
    return min(counts) / sum(counts) < SKEW_SHARE / len(counts)


def class_counts(labels: list[int], num_classes: int) -> list[int]:
    counted = Counter(labels)
    return [counted[c] for c in range(num_classes)]


def class_weights(labels: list[int], num_classes: int, mode: ClassWeight) -> torch.Tensor | None:
    """Per-class loss weights [C], or None for plain cross-entropy."""
    if mode == "none":
        return None
    counts = class_counts(labels, num_classes)
    # A class absent from training gets weight 0: it has no loss to weigh.
    total = sum(counts)
    return torch.tensor([total / (num_classes * n) if n else 0.0 for n in counts])


def weight_summary(
    counts: list[int], labels: list[str], mode: ClassWeight, weights: torch.Tensor | None
) -> dict[str, Any]:
    """The report's account of the training labels' balance and of the class weights training
    applied to the loss (`weights`: none, null)."""
    applied = None if weights is None else [round(w, 6) for w in weights.tolist()]
    return {
        "mode": mode,
        "applied": weights is not None,
        "weights": None if applied is None else dict(zip(labels, applied, strict=True)),
        "train_counts": dict(zip(labels, counts, strict=True)),
        "smallest_share": round(min(counts) / sum(counts), 4),
        "skewed": is_skewed(counts),
    }
