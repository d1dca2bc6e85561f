"""The paired comparison of two models on the same test texts."""

import random

import pytest
from sklearn.metrics import f1_score

from training.compare import paired_comparison

LABELS = ["neg", "pos", "other"]


def answers(count: int, accuracy: float, gold: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    wrong = {label: [x for x in LABELS if x != label] for label in LABELS}
    return [g if rng.random() < accuracy else rng.choice(wrong[g]) for g in gold[:count]]


def test_identical_answers_differ_by_nothing() -> None:
    gold = [random.Random(0).choice(LABELS) for _ in range(300)]
    same = answers(300, 0.7, gold, seed=1)
    found = paired_comparison(gold, same, same, LABELS)
    for score in ("accuracy", "macro_f1"):
        assert found[score] == {"difference": 0.0, "low": 0.0, "high": 0.0}
    assert (found["only_first_right"], found["only_second_right"], found["mcnemar_p"]) == (
        0,
        0,
        1.0,
    )


def test_a_clearly_better_model_has_an_interval_above_zero_and_a_small_p() -> None:
    gold = [random.Random(0).choice(LABELS) for _ in range(1000)]
    better, worse = answers(1000, 0.9, gold, seed=1), answers(1000, 0.6, gold, seed=2)
    found = paired_comparison(gold, better, worse, LABELS)
    acc = found["accuracy"]
    assert 0 < acc["low"] < acc["difference"] < acc["high"]
    observed = sum(b == g for b, g in zip(better, gold, strict=True)) - sum(
        w == g for w, g in zip(worse, gold, strict=True)
    )
    assert acc["difference"] == pytest.approx(observed / 1000, abs=1e-4)
    expected_f1 = f1_score(gold, better, average="macro") - f1_score(gold, worse, average="macro")
    assert found["macro_f1"]["difference"] == pytest.approx(expected_f1, abs=1e-4)
    assert found["mcnemar_p"] < 1e-6
    # Swapping the two models mirrors everything.
    mirrored = paired_comparison(gold, worse, better, LABELS)["accuracy"]
    assert mirrored["difference"] == -acc["difference"]


def test_two_equally_good_models_cannot_be_told_apart() -> None:
    gold = [random.Random(0).choice(LABELS) for _ in range(400)]
    found = paired_comparison(
        gold, answers(400, 0.8, gold, seed=1), answers(400, 0.8, gold, seed=2), LABELS
    )
    assert found["accuracy"]["low"] < 0 < found["accuracy"]["high"]
    assert found["mcnemar_p"] > 0.05
