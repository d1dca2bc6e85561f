"""Which engine serves (ENGINE, DEVICE), and its warm-up.

Two exist: torch eager (the reference: training, GPU, the layer trace) and ONNX Runtime on CPU
(the same weights without torch's per-time-step overhead).
"""

import logging

import torch

from app.core.artifacts import Artifacts
from app.core.network import numpy_weights
from app.engines.base import Engine
from app.engines.onnx_runtime import OnnxEngine
from app.engines.torch_eager import TorchEngine, select_device

log = logging.getLogger(__name__)


def make_engine(choice: str, artifacts: Artifacts, device_preference: str, threads: int) -> Engine:
    """ENGINE=auto: ONNX Runtime on CPU, torch on CUDA; torch or onnx: that one."""
    device = select_device(device_preference)
    if choice == "torch" or (choice == "auto" and device.type != "cpu"):
        return TorchEngine(artifacts, device, threads)
    if device.type != "cpu":
        raise RuntimeError(f"ENGINE=onnx runs on CPU only, not on {device} (use ENGINE=auto)")
    torch.set_num_threads(threads)  # torch still runs /explain: the same bound as the engine
    return OnnxEngine(artifacts.model.config, numpy_weights(artifacts.model), threads)


def warm_up(engine: Engine, max_batch_size: int, max_length: int) -> None:
    """Run each batch shape class once, so the first real request pays no one-off costs.

    Rows of mixed lengths: a batch of equal lengths would skip the packed-sequence path that every
    real mixed batch takes; and the largest batch the queue may hand over is included.
    """
    for size in sorted({1, min(8, max_batch_size), max_batch_size}):
        engine.predict([[1] * (max_length - i % max_length) for i in range(size)])
    log.info("warm-up done: engine %s on %s", engine.name, engine.device)
