"""When class weights are used, and what they are."""

import torch

from training.balance import class_weights, is_skewed
from training.data import BUNDLED_DATA, load_examples, split_examples


def test_the_rule_is_half_an_even_share_for_the_smallest_class() -> None:
    assert is_skewed([88, 12])  # spam at 12%: under 25%
    assert not is_skewed([74, 26])
    assert is_skewed([30, 30, 30, 2, 4, 4])  # 2% of 6 classes: under 8.3%
    assert not is_skewed([20, 20, 20, 20, 10, 10])


def test_the_bundled_reviews_are_not_skewed() -> None:
    train = split_examples(load_examples(BUNDLED_DATA))["train"]
    labels = sorted({e.label for e in train})
    assert not is_skewed([sum(e.label == label for e in train) for label in labels])


def test_weights_even_out_the_classes_and_average_one_per_text() -> None:
    labels = [0] * 90 + [1] * 8 + [2] * 2
    weights = class_weights(labels, 3, "balanced")
    assert weights is not None
    per_class_total = weights * torch.tensor([90.0, 8.0, 2.0])
    assert torch.allclose(per_class_total, per_class_total[0].expand(3))
    assert torch.isclose(weights[torch.tensor(labels)].mean(), torch.tensor(1.0))
    assert class_weights(labels, 3, "none") is None
