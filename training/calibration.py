"""Calibrated probabilities: one temperature fitted on the validation split, folded into the dense
layer, and the numbers that say how far the top probability is from the accuracy.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) divides
every logit by one T > 0 fitted to minimize the validation negative log-likelihood. It moves no
prediction (argmax is unchanged), only how sure each one is. Since logits = W x + b, dividing
them by T is W / T and b / T: the served model is the same plain network with a rescaled dense
layer, so every engine serves calibrated probabilities with nothing added at serving time.
"""

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from app.core.network import RNNClassifier
from app.core.tokenizer import Tokenizer
from training.data import Example
from training.evaluation import predict_logits

ECE_BINS = 15
# Searched on log T: from 20x sharper to 20x flatter than training left the model.
LOG_T_BOUNDS = (float(np.log(0.05)), float(np.log(20.0)))

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def nll(logits: Floats, labels: Ints, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / temperature)."""
    log_p = log_softmax(logits / temperature, axis=1)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: Floats, labels: Ints) -> float:
    """The T that minimizes the NLL of `labels` (one-dimensional, so a bounded scalar search)."""
    found = minimize_scalar(
        lambda log_t: nll(logits, labels, float(np.exp(log_t))),
        bounds=LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(found.x))


@dataclass(frozen=True)
class Bin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean top probability of the bin's texts
    accuracy: float  # share of them whose top label is right


def reliability(probabilities: Floats, labels: Ints, bins: int = ECE_BINS) -> list[Bin]:
    """Texts binned by their top probability (equal-width bins over [0, 1])."""
    top = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i + 1]]; a top probability of exactly 0 cannot occur.
    which = np.clip(np.searchsorted(edges, top, side="left") - 1, 0, bins - 1)
    found = []
    for i in range(bins):
        inside = which == i
        count = int(inside.sum())
        found.append(
            Bin(
                float(edges[i]),
                float(edges[i + 1]),
                count,
                float(top[inside].mean()) if count else 0.0,
                float(right[inside].mean()) if count else 0.0,
            )
        )
    return found


def expected_calibration_error(probabilities: Floats, labels: Ints, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - top probability| over the bins, weighted by the texts in each."""
    found = reliability(probabilities, labels, bins)
    return sum(b.count * abs(b.accuracy - b.confidence) for b in found) / len(labels)


def scores(logits: Floats, labels: Ints, temperature: float) -> dict[str, Any]:
    """ECE and NLL of one labelled set, without (T = 1) and with the temperature."""
    before, after = softmax(logits, axis=1), softmax(logits / temperature, axis=1)
    return {
        "texts": len(labels),
        "ece_before": round(expected_calibration_error(before, labels), 4),
        "ece_after": round(expected_calibration_error(after, labels), 4),
        "nll_before": round(nll(logits, labels), 4),
        "nll_after": round(nll(logits, labels, temperature), 4),
        "reliability_before": [vars(b) for b in reliability(before, labels)],
        "reliability_after": [vars(b) for b in reliability(after, labels)],
    }


def fold_temperature(model: RNNClassifier, temperature: float) -> RNNClassifier:
    """A copy of `model` whose logits are the original ones divided by `temperature`."""
    folded = copy.deepcopy(model)
    with torch.no_grad():
        folded.dense.weight.div_(temperature)
        folded.dense.bias.div_(temperature)
        if folded.ngrams is not None:  # the branch's scores are part of the logits too
            for scores in folded.ngrams.parameters():
                scores.div_(temperature)
    return folded


def labelled_logits(
    model: RNNClassifier,
    tokenizer: Tokenizer,
    examples: Sequence[Example],
    labels: list[str],
    max_length: int,
) -> tuple[Floats, Ints]:
    """The model's logits on the examples (float64) and their label ids."""
    ids = [tokenizer.encode(e.text, max_length).ids for e in examples]
    logits = predict_logits(model, ids).double().numpy()
    return logits, np.array([labels.index(e.label) for e in examples], dtype=np.int64)


def calibrate(
    model: RNNClassifier,
    tokenizer: Tokenizer,
    sets: Mapping[str, Sequence[Example]],
    labels: list[str],
    max_length: int,
) -> tuple[RNNClassifier, dict[str, Any]]:
    """The model with a temperature fitted on `sets["validation"]` folded in, and ECE/NLL of
    every set before and after it."""
    measured = {
        name: labelled_logits(model, tokenizer, examples, labels, max_length)
        for name, examples in sets.items()
    }
    temperature = fit_temperature(*measured["validation"])
    found: dict[str, Any] = {
        "temperature": round(temperature, 6),
        "fitted_on": "validation",
        "bins": ECE_BINS,
    }
    for name, (logits, gold) in measured.items():
        found[name] = {
            "accuracy": round(float((logits.argmax(axis=1) == gold).mean()), 4),
            **scores(logits, gold, temperature),
        }
    return fold_temperature(model, temperature), found


def calibration_metrics(calibration: dict[str, Any]) -> dict[str, float]:
    """ECE and NLL of each judged set, after the temperature (config.json's headline numbers)."""
    return {
        f"{name}_{score}": calibration[name][f"{score}_after"]
        for name in ("test", "out_of_domain")
        if name in calibration
        for score in ("ece", "nll")
    }
