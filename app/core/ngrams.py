"""The n-gram branch's features: the words of a text and its hashed word pairs (fastText's trick).

A text of L words reads L words and L - 1 pairs; each has a row of class scores, and the branch's
logits are their mean, added to the RNN's. Words use their own vocabulary ids; a pair (a, b) of
word ids goes to bucket (a * PRIME + b) mod buckets. An unknown word (<unk>) and every pair it is
in score nothing but still count in the mean: the branch only knows words by their identity, and
a text it knows little of (a tweet to a model of film reviews) should hear little from it; its
<unk> pairs would otherwise read buckets other pairs trained. Training and both engines compute pairs with
`pair_buckets`, and config.json names the scheme (HASHING), so a service that hashes otherwise
refuses the model instead of serving different answers.

Why a linear branch: on short texts and rare classes a bag of n-grams with a linear map (the
TF-IDF baseline) already knows much of the answer; inside the network the RNN learns what the
bag misses instead of competing with it.
"""

from typing import TypeVar

import numpy as np

from app.core.tokenizer import UNK_ID

HASHING = "word-id-pairs-v2"  # v2: <unk> and its pairs score nothing
# A prime above any vocabulary size, so (a, b) and (b, a) and nearby pairs land far apart.
PRIME = 1_000_003

Ids = TypeVar("Ids")  # a numpy array or a torch tensor of int64 word ids: the same code hashes both


def pair_buckets(ids: Ids, buckets: int) -> Ids:
    """[B, T] word ids -> [B, T - 1] the bucket of each pair of neighbouring words (pairs that
    reach into padding get a bucket too: `ngram_weights` gives them weight 0)."""
    return (ids[:, :-1] * PRIME + ids[:, 1:]) % buckets  # type: ignore[index,no-any-return]


def unknown_pairs(ids: np.ndarray) -> np.ndarray:
    """[B, T] word ids -> [B, T - 1] True where a pair holds <unk>."""
    unknown = ids == UNK_ID
    return unknown[:, :-1] | unknown[:, 1:]  # type: ignore[no-any-return]


def ngram_weights(ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each word's and each pair's weight in the mean, [B, T] and [B, T - 1] float32: 1 / (2L - 1)
    for a text's own words and pairs, 0 past its end and for <unk> and its pairs."""
    steps = ids.shape[1]
    share = (1.0 / (2 * lengths - 1)).astype(np.float32)[:, None]
    words = (np.arange(steps)[None, :] < lengths[:, None]) & (ids != UNK_ID)
    pairs = (np.arange(1, steps)[None, :] < lengths[:, None]) & ~unknown_pairs(ids)
    return (words * share).astype(np.float32), (pairs * share).astype(np.float32)
