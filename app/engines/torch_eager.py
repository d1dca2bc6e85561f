"""PyTorch eager: the reference engine (GPU, and what training computes). Needs the torch extra."""

from collections.abc import Callable

import numpy as np
import torch

from app.core.artifacts import Artifacts
from app.core.network import collate, from_weights
from app.engines.base import Trace


def cuda_available() -> bool:
    return torch.cuda.is_available()


class TorchEngine:
    name = "torch"

    def __init__(self, artifacts: Artifacts, device: str, threads: int) -> None:
        # Explicit: torch's default is every host core, which oversubscribes a pinned container
        # or a multi-worker server.
        torch.set_num_threads(threads)
        self._device = torch.device(device)
        self.device = str(self._device)
        self.model = from_weights(artifacts.architecture, artifacts.weights).to(self._device)
        self.on_batch: Callable[[int, int], None] | None = None

    @torch.inference_mode()
    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        ids, lengths = collate(sequences, self._device)
        if self.on_batch is not None:  # packed sequences: the recurrent layer runs no padding
            real = int(lengths.sum())
            self.on_batch(real, real)
        return torch.softmax(self.model(ids, lengths), dim=-1).float().cpu().numpy()

    @torch.inference_mode()
    def trace(self, sequences: list[list[int]]) -> Trace:
        stages = self.model.trace(*collate(sequences, self._device))

        def array(name: str) -> np.ndarray:
            return stages[name].float().cpu().numpy()

        return Trace(
            array("embedding"),
            array("rnn_steps"),
            array("dense"),
            array("softmax"),
            array("ngrams") if "ngrams" in stages else None,
        )
