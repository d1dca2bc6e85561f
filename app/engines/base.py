"""What the batch runner needs of an engine, and nothing more: another engine plugs in without
touching the queue or the runner."""

from typing import Protocol

import numpy as np


class Engine(Protocol):
    name: str
    device: str

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), classes], float32, in input order."""
        ...
