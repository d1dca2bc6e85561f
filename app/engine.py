"""Model engines: one padded batch of word ids in, class probabilities out.

The batch runner (app/runner.py) calls an engine and knows nothing else about it, so another
engine plugs in without touching the queue or the runner. Two exist: torch eager (the reference:
training, GPU, the layer trace) and ONNX Runtime on CPU (app/onnx_engine.py, the same weights
without torch's per-time-step overhead); `make_engine` picks one from the settings.
"""

import logging
from typing import Protocol

import numpy as np
import torch

from app.artifacts import Artifacts
from app.model import collate
from app.onnx_engine import OnnxEngine

log = logging.getLogger(__name__)


class Engine(Protocol):
    name: str
    device: str

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), classes], float32, in input order."""
        ...


def select_device(preference: str) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda but no CUDA device is available")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


class TorchEngine:
    """PyTorch eager: the reference engine (training, GPU, the layer trace)."""

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


def make_engine(choice: str, artifacts: Artifacts, device_preference: str, threads: int) -> Engine:
    """ENGINE=auto: ONNX Runtime on CPU, torch on CUDA; torch or onnx: that one."""
    device = select_device(device_preference)
    if choice == "torch" or (choice == "auto" and device.type != "cpu"):
        return TorchEngine(artifacts, device, threads)
    if device.type != "cpu":
        raise RuntimeError(f"ENGINE=onnx runs on CPU only, not on {device} (use ENGINE=auto)")
    torch.set_num_threads(threads)  # torch still runs /explain: the same bound as the engine
    return OnnxEngine(artifacts.model, threads)


def warm_up(engine: Engine, max_batch_size: int, max_length: int) -> None:
    """Run each batch shape class once, so the first real request pays no one-off costs.

    Rows of mixed lengths: a batch of equal lengths would skip the packed-sequence path that every
    real mixed batch takes; and the largest batch the queue may hand over is included.
    """
    for size in sorted({1, min(8, max_batch_size), max_batch_size}):
        engine.predict([[1] * (max_length - i % max_length) for i in range(size)])
    log.info("warm-up done: engine %s on %s", engine.name, engine.device)
