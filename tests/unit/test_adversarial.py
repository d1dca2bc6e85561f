"""Adversarial and virtual adversarial losses on a fixed batch of a small real network."""

import itertools

import pytest
import torch
from torch import nn

from app.core.architecture import ModelConfig
from app.core.network import RNNClassifier, collate
from training.adversarial import (
    adversarial_loss,
    real_words,
    scaled_step,
    spread,
    virtual_adversarial_loss,
)

BATCH = [[2, 3, 4, 5], [6, 7], [8, 9, 10, 11, 12, 13], [4, 14, 15]]
TARGETS = torch.tensor([0, 1, 2, 1])
EPS = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]


def network() -> RNNClassifier:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=16, num_classes=3, embedding_dim=8, hidden_dim=6)
    # Eval mode: no dropout, so every loss below is a function of the perturbation alone.
    return RNNClassifier(config).eval()


def adversarial_at(model: RNNClassifier, eps: float) -> float:
    ids, lengths = collate(BATCH)
    embedded = model.embedding(ids)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    clean = loss_fn(model.forward_from_embedded(embedded, lengths, ids), TARGETS)
    return adversarial_loss(
        model, ids, embedded, lengths, clean, lambda out: loss_fn(out, TARGETS), eps
    ).item()


def test_adversarial_loss_goes_up_with_eps_on_a_fixed_batch() -> None:
    model = network()
    ids, lengths = collate(BATCH)
    clean = nn.functional.cross_entropy(model(ids, lengths), TARGETS, reduction="sum").item()
    losses = [adversarial_at(model, eps) for eps in EPS]
    assert losses[0] == pytest.approx(clean, abs=1e-6)  # no perturbation: the clean loss
    assert all(a < b for a, b in itertools.pairwise(losses)), losses


def test_the_step_has_norm_eps_per_text_in_the_normalized_space_and_spares_padding() -> None:
    ids, lengths = collate(BATCH)
    embedded = network().embedding(ids).detach() * 3.0  # a scale of its own: eps must not care
    mask = real_words(embedded, lengths)
    scale = spread(embedded, mask)
    step = scaled_step(torch.randn(embedded.shape), scale, mask, 1.5)
    assert torch.allclose((step / scale).flatten(1).norm(dim=1), torch.full((len(BATCH),), 1.5))
    assert bool((step[1, 2:] == 0).all())  # the second text has 2 words; the rest is padding


def test_virtual_adversarial_direction_moves_the_probabilities_more_than_a_random_one() -> None:
    model = network()
    ids, lengths = collate(BATCH)
    embedded = model.embedding(ids)
    logits = model.forward_from_embedded(embedded, lengths, ids)
    generator = torch.Generator().manual_seed(0)
    found = [
        virtual_adversarial_loss(model, ids, embedded, lengths, logits, eps, generator).item()
        for eps in EPS
    ]
    assert found[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in itertools.pairwise(found)), found
    # The same norm in random directions moves the probabilities less.
    mask = real_words(embedded, lengths)
    scale = spread(embedded, mask)
    target = torch.softmax(logits.detach(), dim=-1)
    for seed in range(5):
        noise = torch.randn(embedded.shape, generator=torch.Generator().manual_seed(seed)) / scale
        moved = model.forward_from_embedded(
            embedded + scaled_step(noise, scale, mask, 2.0), lengths, ids
        )
        random_kl = nn.functional.kl_div(
            torch.log_softmax(moved, dim=-1), target, reduction="sum"
        ).item()
        assert random_kl < found[EPS.index(2.0)]
