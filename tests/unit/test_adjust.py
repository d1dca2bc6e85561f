"""Logit adjustment: tau chosen by validation macro-F1, folded into the dense bias."""

import numpy as np
import torch

from app.core.architecture import ModelConfig
from app.core.network import RNNClassifier, collate
from training.adjust import TAUS, adjust, choose_tau, fold_adjustment

COUNTS = [900, 80, 20]  # the smallest class: 2% of 3 classes


def skewed_logits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits that carry the training prior: every class's evidence plus log(prior), so the
    rare classes lose texts they should win."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=3000, p=[1 / 3] * 3)
    evidence = rng.normal(size=(3000, 3)) + 1.5 * np.eye(3)[labels]
    log_prior = np.log(np.array(COUNTS) / sum(COUNTS))
    return evidence + log_prior, labels


def test_a_prior_in_the_logits_is_moved_out_by_the_tau_validation_likes_best() -> None:
    validation, test = skewed_logits(0), skewed_logits(1)
    model = RNNClassifier(ModelConfig(vocab_size=10, num_classes=3, embedding_dim=4, hidden_dim=3))
    _, found = adjust(model, COUNTS, validation, test)
    assert found["applied"] and found["tau"] > 0
    scores = found["validation_macro_f1"]
    assert scores[str(found["tau"])] == max(scores.values()) > scores["0.0"]


def test_labels_without_skew_are_left_alone_and_tau_zero_wins_when_nothing_helps() -> None:
    model = RNNClassifier(ModelConfig(vocab_size=10, num_classes=3, embedding_dim=4, hidden_dim=3))
    same, found = adjust(model, [400, 350, 250], skewed_logits(0), skewed_logits(1))
    assert same is model and not found["applied"]
    rng = np.random.default_rng(2)
    labels = rng.choice(3, size=2000)
    clean = rng.normal(size=(2000, 3)) + 2 * np.eye(3)[labels]  # no prior in these logits
    tau, scores = choose_tau(clean, labels, np.log(np.array(COUNTS) / sum(COUNTS)))
    assert tau == 0.0 and set(scores) == {str(t) for t in TAUS}


def test_folding_the_shift_adds_it_to_every_logit() -> None:
    torch.manual_seed(0)
    model = RNNClassifier(
        ModelConfig(vocab_size=10, num_classes=3, embedding_dim=4, hidden_dim=3)
    ).eval()
    shift = np.array([-0.5, 1.25, 2.0])
    ids, lengths = collate([[2, 3, 4], [5], [6, 7]])
    with torch.inference_mode():
        before = model(ids, lengths)
        after = fold_adjustment(model, shift)(ids, lengths)
        again = model(ids, lengths)
    assert torch.allclose(after, before + torch.tensor(shift, dtype=torch.float32), atol=1e-6)
    assert torch.equal(again, before)  # the original is untouched
