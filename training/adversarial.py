"""Adversarial and virtual adversarial training on the word vectors (Miyato, Dai & Goodfellow,
"Adversarial Training Methods for Semi-Supervised Text Classification", ICLR 2017).

Words are discrete, so the perturbation moves each text's word vectors instead: by `eps` (L2 norm
over the whole text) in the direction that raises the loss most (adversarial), or that changes
the model's own probabilities most (virtual adversarial, which needs no label). The model trains
on the clean and the perturbed text; the served model is the same network, so serving costs
nothing more.

The paper perturbs embeddings normalized to zero mean and unit variance per dimension, which
makes `eps` mean the same whatever the vectors' scale. Normalizing the served table would change
the model, so here the perturbation is computed in that normalized space (the batch's real words
give each dimension's spread) and mapped back: the same perturbation relative to the vectors.
"""

from collections.abc import Callable

import torch
from torch import nn

from app.core.network import RNNClassifier

# The first, small step of the power iteration that finds the virtual adversarial direction
# (the paper's code uses 0.1 in the normalized space; far smaller drowns in float32 rounding).
VAT_XI = 0.1
TINY = 1e-12


def real_words(embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T, 1]: 1 at each text's words, 0 at padding."""
    steps = torch.arange(embedded.shape[1]).unsqueeze(0)
    return (steps < lengths.unsqueeze(1)).unsqueeze(-1).to(embedded.dtype)


def spread(embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[E]: each dimension's standard deviation over the batch's real words (no gradient)."""
    vectors = embedded.detach()
    count = mask.sum().clamp(min=1.0)
    mean = (vectors * mask).sum(dim=(0, 1)) / count
    variance = (((vectors - mean) * mask) ** 2).sum(dim=(0, 1)) / count
    return variance.sqrt().clamp(min=1e-6)


def scaled_step(
    direction: torch.Tensor, scale: torch.Tensor, mask: torch.Tensor, eps: float
) -> torch.Tensor:
    """A perturbation of L2 norm `eps` per text in the normalized space, along `direction` (a
    gradient with respect to the unnormalized vectors), mapped back to the vectors' scale."""
    normalized = direction * scale * mask  # the gradient with respect to the normalized vectors
    norms = normalized.flatten(1).norm(dim=1).clamp(min=TINY).view(-1, 1, 1)
    step: torch.Tensor = eps * normalized / norms * scale
    return step


def adversarial_loss(
    model: RNNClassifier,
    ids: torch.Tensor,
    embedded: torch.Tensor,
    lengths: torch.Tensor,
    clean_loss: torch.Tensor,
    criterion: Callable[[torch.Tensor], torch.Tensor],
    eps: float,
) -> torch.Tensor:
    """`criterion` of the model's logits on the texts moved by `eps` along the loss's gradient
    (`embedded`: the vectors of `ids`; the n-gram branch reads the ids, unmoved).

    `clean_loss` must come from `embedded` (its graph is kept for the caller's backward pass).
    """
    (gradient,) = torch.autograd.grad(clean_loss, embedded, retain_graph=True)
    mask = real_words(embedded, lengths)
    step = scaled_step(gradient.detach(), spread(embedded, mask), mask, eps)
    return criterion(model.forward_from_embedded(embedded + step, lengths, ids))


def _divergence(clean_logits: torch.Tensor, perturbed_logits: torch.Tensor) -> torch.Tensor:
    """KL(clean || perturbed) summed over the batch; the clean probabilities are a fixed target."""
    target = torch.softmax(clean_logits.detach(), dim=-1)
    return nn.functional.kl_div(
        torch.log_softmax(perturbed_logits, dim=-1), target, reduction="sum"
    )


def virtual_adversarial_loss(
    model: RNNClassifier,
    ids: torch.Tensor,
    embedded: torch.Tensor,
    lengths: torch.Tensor,
    clean_logits: torch.Tensor,
    eps: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """KL divergence between the model's probabilities on the texts and on the texts moved by
    `eps` in the direction that changes them most (one power iteration from a random one)."""
    mask = real_words(embedded, lengths)
    scale = spread(embedded, mask)
    # A random direction, uniform in the normalized space (scaled_step multiplies by `scale`).
    noise = torch.randn(embedded.shape, generator=generator).to(embedded.device) / scale
    start = scaled_step(noise, scale, mask, VAT_XI)
    start.requires_grad_(True)
    probe = _divergence(
        clean_logits, model.forward_from_embedded(embedded.detach() + start, lengths, ids)
    )
    (gradient,) = torch.autograd.grad(probe, start)
    step = scaled_step(gradient.detach(), scale, mask, eps)
    return _divergence(clean_logits, model.forward_from_embedded(embedded + step, lengths, ids))
