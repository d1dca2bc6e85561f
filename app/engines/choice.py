"""Which engine serves (ENGINE, DEVICE), and its warm-up.

Two exist: ONNX Runtime on CPU (the serving install's, no torch needed) and torch eager (the
reference, and the GPU engine), which needs the `torch` extra: it is imported only when asked for.
"""

import importlib.util
import logging
from pathlib import Path

from app.core.artifacts import Artifacts
from app.engines.base import Engine
from app.engines.onnx_runtime import OnnxEngine

log = logging.getLogger(__name__)

TORCH_MISSING = (
    "{what} needs PyTorch, which the serving install leaves out: "
    "pip install 'rnn-text-classifier[torch]' (on a GPU machine, torch built for its CUDA)"
)


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _nvidia_driver_loaded() -> bool:
    return Path("/proc/driver/nvidia/version").exists()


def resolve_device(preference: str) -> str:
    """DEVICE=auto: cuda when torch is installed and sees a GPU; else cpu. Looked up without
    importing torch on a machine with no NVIDIA driver, so a CPU server never loads it."""
    if preference == "cpu":
        return "cpu"
    if not _torch_installed():
        if preference == "cuda":
            raise RuntimeError(TORCH_MISSING.format(what="DEVICE=cuda"))
        return "cpu"
    if preference == "auto" and not _nvidia_driver_loaded():
        return "cpu"
    from app.engines.torch_eager import cuda_available

    if cuda_available():
        return "cuda"
    if preference == "cuda":
        raise RuntimeError("DEVICE=cuda but no CUDA device is available")
    return "cpu"


def make_engine(choice: str, artifacts: Artifacts, device_preference: str, threads: int) -> Engine:
    """ENGINE=auto: ONNX Runtime on CPU, torch on CUDA; torch or onnx: that one."""
    device = resolve_device(device_preference)
    if choice == "torch" or (choice == "auto" and device != "cpu"):
        if not _torch_installed():
            raise RuntimeError(TORCH_MISSING.format(what="ENGINE=torch"))
        from app.engines.torch_eager import TorchEngine

        return TorchEngine(artifacts, device, threads)
    if device != "cpu":
        raise RuntimeError(f"ENGINE=onnx runs on CPU only, not on {device} (use ENGINE=auto)")
    return OnnxEngine(artifacts.architecture, artifacts.weights, threads)


def warm_up(engine: Engine, max_batch_size: int, max_length: int) -> None:
    """Run each batch shape class once, so the first real request pays no one-off costs.

    Rows of mixed lengths: a batch of equal lengths would skip the packed-sequence path that every
    real mixed batch takes; and the largest batch the queue may hand over is included.
    """
    for size in sorted({1, min(8, max_batch_size), max_batch_size}):
        engine.predict([[1] * (max_length - i % max_length) for i in range(size)])
    log.info("warm-up done: engine %s on %s", engine.name, engine.device)
