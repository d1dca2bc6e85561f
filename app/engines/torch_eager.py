"""PyTorch eager: the reference engine (training, GPU, the layer trace)."""

import numpy as np
import torch

from app.core.artifacts import Artifacts
from app.core.network import collate


def select_device(preference: str) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda but no CUDA device is available")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


class TorchEngine:
    name = "torch"

    def __init__(self, artifacts: Artifacts, device: torch.device, threads: int) -> None:
        # Explicit: torch's default is every host core, which oversubscribes a pinned container
        # or a multi-worker server.
        torch.set_num_threads(threads)
        self._device = device
        self.device = str(device)
        self.model = artifacts.model.to(device).eval()

    @torch.inference_mode()
    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        ids, lengths = collate(sequences, self._device)
        return torch.softmax(self.model(ids, lengths), dim=-1).float().cpu().numpy()
