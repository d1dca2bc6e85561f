"""Model runner: one padded batch of word ids in, class probabilities out, on CPU or GPU."""

import logging

import numpy as np
import torch

from app.artifacts import Artifacts
from app.model import collate

log = logging.getLogger(__name__)


def select_device(preference: str) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda but no CUDA device is available")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


class ModelRunner:
    def __init__(self, artifacts: Artifacts, device: torch.device, threads: int) -> None:
        # Explicit: torch's default is every host core, which oversubscribes a pinned container
        # or a multi-worker server.
        torch.set_num_threads(threads)
        self.device = device
        self.model = artifacts.model.to(device).eval()
        self.max_length = artifacts.max_length

    @torch.inference_mode()
    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), classes], float32, in input order."""
        ids, lengths = collate(sequences, self.device)
        return torch.softmax(self.model(ids, lengths), dim=-1).float().cpu().numpy()

    def warm_up(self) -> None:
        """Run each batch shape class once so the first real request pays no one-off costs."""
        for batch in (1, 8, 64):
            self.predict([[1] * self.max_length] * batch)
        log.info("warm-up done on %s with %d threads", self.device, torch.get_num_threads())
