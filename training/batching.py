"""Training batches of texts of similar length, as the server batches them.

A recurrent layer takes one step per word of a batch's longest text, whatever the others' lengths,
so a batch of mixed lengths pays for steps its short texts never read. Each epoch shuffles the
texts, sorts each pool of POOL_BATCHES batches' worth by length, cuts the pools into batches and
shuffles the batches: which texts meet in a batch and in what order the batches come stays random
from epoch to epoch, while a batch's texts differ little in length.
"""

import torch

POOL_BATCHES = 50


def shuffled_batches(
    lengths: torch.Tensor, batch_size: int, generator: torch.Generator, by_length: bool
) -> list[list[int]]:
    """Indices of the texts with these `lengths` [N] in batches of `batch_size` (the last may be
    smaller), drawn from `generator`: of similar length with `by_length`, else at random."""
    order = torch.randperm(len(lengths), generator=generator)
    if not by_length:
        return [chunk.tolist() for chunk in torch.split(order, batch_size)]
    pool = torch.arange(len(order)) // (batch_size * POOL_BATCHES)
    by_pool_then_length = pool * (int(lengths.max()) + 1) + lengths[order]
    order = order[torch.sort(by_pool_then_length, stable=True).indices]
    batches = torch.split(order, batch_size)
    return [batches[i].tolist() for i in torch.randperm(len(batches), generator=generator)]
