"""Temperature scaling: fitted on validation, folded into the dense layer, judged by ECE and NLL."""

import numpy as np
import pytest
import torch
from scipy.special import softmax

from app.core.architecture import ModelConfig
from app.core.network import RNNClassifier
from app.core.tokenizer import Tokenizer
from training.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    nll,
    reliability,
)
from training.data import Example
from training.evaluation import predict_logits

WORDS = "good bad fine dull great awful plot cast music long short funny".split()
LABELS = ["a", "b", "c"]
OVERCONFIDENCE = 8.0


def texts(count: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) for _ in range(count)]


def overconfident_setup() -> tuple[RNNClassifier, Tokenizer, dict[str, list[Example]]]:
    """An untrained network whose own probabilities draw the labels (so it is calibrated), then
    made over-confident by multiplying its dense layer by OVERCONFIDENCE."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tokenizer = Tokenizer.build(WORDS)
    model = RNNClassifier(
        ModelConfig(vocab_size=len(tokenizer), num_classes=3, embedding_dim=16, hidden_dim=8)
    ).eval()
    with torch.no_grad():
        model.dense.weight.mul_(30.0)  # spread its probabilities so labels carry information
    sets = {}
    for name, count in (("validation", 2000), ("test", 2000)):
        chosen = texts(count, rng)
        logits = predict_logits(model, [tokenizer.encode(t, 20).ids for t in chosen]).numpy()
        probabilities = softmax(logits.astype(np.float64), axis=1)
        sets[name] = [
            Example(text, LABELS[rng.choice(3, p=p / p.sum())])
            for text, p in zip(chosen, probabilities, strict=True)
        ]
    return fold_temperature(model, 1 / OVERCONFIDENCE), tokenizer, sets


def test_temperature_lowers_validation_nll_of_an_overconfident_model() -> None:
    model, tokenizer, sets = overconfident_setup()
    folded, found = calibrate(model, tokenizer, sets, LABELS, 20)
    assert found["temperature"] > 1.0  # over-confident: the logits must be flattened
    assert found["temperature"] == pytest.approx(OVERCONFIDENCE, rel=0.15)
    for name in ("validation", "test"):
        assert found[name]["nll_after"] < found[name]["nll_before"]
        assert found[name]["ece_after"] < found[name]["ece_before"]
    # What is saved is the folded model: its own NLL is the calibrated one.
    ids = [tokenizer.encode(e.text, 20).ids for e in sets["validation"]]
    gold = np.array([LABELS.index(e.label) for e in sets["validation"]])
    own = nll(predict_logits(folded, ids).double().numpy(), gold)
    assert own == pytest.approx(found["validation"]["nll_after"], abs=1e-4)


def test_folding_keeps_every_prediction_and_gives_the_unfolded_probabilities() -> None:
    model, tokenizer, sets = overconfident_setup()
    ids = [tokenizer.encode(e.text, 20).ids for e in sets["test"]]
    logits = predict_logits(model, ids).double().numpy()
    temperature = 3.7
    folded = predict_logits(fold_temperature(model, temperature), ids).double().numpy()
    assert (folded.argmax(axis=1) == logits.argmax(axis=1)).all()
    np.testing.assert_allclose(
        softmax(folded, axis=1), softmax(logits / temperature, axis=1), atol=1e-6
    )
    # The original model is left as it was.
    np.testing.assert_array_equal(predict_logits(model, ids).double().numpy(), logits)


def test_fitted_temperature_minimizes_nll() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 4)) * 3
    labels = np.array([rng.choice(4, p=p) for p in softmax(logits / 2.0, axis=1)])
    best = fit_temperature(logits, labels)
    for other in (best * 0.9, best * 1.1):
        assert nll(logits, labels, best) < nll(logits, labels, other)


def test_expected_calibration_error_by_hand() -> None:
    # Ten texts, all with top probability 0.9: 9 right is calibrated, 6 right is 0.3 off.
    probabilities = np.tile([0.9, 0.1], (10, 1))
    nine_right = np.array([0] * 9 + [1])
    six_right = np.array([0] * 6 + [1] * 4)
    assert expected_calibration_error(probabilities, nine_right) == pytest.approx(0.0)
    assert expected_calibration_error(probabilities, six_right) == pytest.approx(0.3)
    bins = reliability(probabilities, six_right)
    assert len(bins) == 15 and sum(b.count for b in bins) == 10
    (full,) = [b for b in bins if b.count]
    assert full.lower < 0.9 <= full.upper and full.accuracy == pytest.approx(0.6)
