"""Logit adjustment for skewed labels (Menon et al., "Long-tail learning via logit adjustment",
ICLR 2021), chosen on the validation split and folded into the dense layer's bias.

A model trained on skewed labels has the training prior in its logits: a rare class needs much
more evidence to win. Subtracting tau x log(prior) from the logits moves that prior out by a
chosen amount; tau = 1 aims at balanced error. tau is picked from a grid, 0 included, by
validation macro-F1, so data where the adjustment does not help keeps tau = 0 and the model as
it is. Like the temperature it is a change to the bias alone: serving is unchanged.

Weighting the training loss by class instead (`--class-weight balanced`) was tried on the
16-class health tweets (README): it lowered macro-F1 by 4 points; this adjustment chose 0 there.
"""

import copy
from typing import Any

import numpy as np
import torch
from scipy.special import softmax
from sklearn.metrics import f1_score

from app.core.network import RNNClassifier
from training.balance import is_skewed
from training.calibration import Floats, Ints, expected_calibration_error, nll

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose_tau(logits: Floats, labels: Ints, log_prior: Floats) -> tuple[float, dict[str, float]]:
    """The tau with the best macro-F1 of the adjusted logits (the smallest on ties)."""
    classes = list(range(logits.shape[1]))
    found = {
        str(tau): round(
            float(
                f1_score(
                    labels,
                    (logits - tau * log_prior).argmax(axis=1),
                    labels=classes,
                    average="macro",
                    zero_division=0,
                )
            ),
            4,
        )
        for tau in TAUS
    }
    best = max(TAUS, key=lambda tau: (found[str(tau)], -tau))
    return best, found


def fold_adjustment(model: RNNClassifier, shift: Floats) -> RNNClassifier:
    """A copy of `model` whose logits are the original ones plus `shift` [C]."""
    adjusted = copy.deepcopy(model)
    with torch.no_grad():
        adjusted.dense.bias.add_(torch.from_numpy(shift).to(adjusted.dense.bias.dtype))
    return adjusted


def adjust(
    model: RNNClassifier,
    counts: list[int],
    validation: tuple[Floats, Ints],
    test: tuple[Floats, Ints],
) -> tuple[RNNClassifier, dict[str, Any]]:
    """With skewed training counts, the model with the validation-chosen adjustment folded in,
    and what was chosen; `validation` and `test` are the model's (logits, labels)."""
    if not is_skewed(counts) or min(counts) == 0:
        return model, {"applied": False, "tau": 0.0}
    log_prior = np.log(np.array(counts, dtype=np.float64) / sum(counts))
    tau, scores = choose_tau(*validation, log_prior)
    logits, gold = test
    shifted = logits - tau * log_prior
    found = {
        "applied": True,
        "tau": tau,
        "validation_macro_f1": scores,
        # What the served probabilities score on test once the prior is moved out of them.
        "test_ece": round(expected_calibration_error(softmax(shifted, axis=1), gold), 4),
        "test_nll": round(nll(shifted, gold), 4),
    }
    return fold_adjustment(model, -tau * log_prior) if tau else model, found
