"""What the request path needs of an engine, and nothing more: another engine plugs in without
touching the queue, the runner or /explain."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Trace:
    """Every stage of one forward pass, batch first, for looking at a prediction layer by layer.
    Past a text's end, `rnn_steps` rows are zeros and `embedding` rows the padding's vector."""

    embedding: np.ndarray  # [B, T, E]
    rnn_steps: np.ndarray  # [B, T, H * directions]: the last recurrent layer at every step
    logits: np.ndarray  # [B, C]: what the softmax reads
    probabilities: np.ndarray  # [B, C]
    ngram_logits: np.ndarray | None = None  # [B, C]: the n-gram branch's share of `logits`


class Engine(Protocol):
    name: str
    device: str
    # Hears of the tokens of every batch predicted: (the texts' own, the time steps the recurrent
    # layer ran over every row, padding included). None: nobody listens.
    on_batch: Callable[[int, int], None] | None

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), classes], float32, in input order."""
        ...

    def trace(self, sequences: list[list[int]]) -> Trace:
        """The stages of the forward pass of each sequence, in input order."""
        ...
