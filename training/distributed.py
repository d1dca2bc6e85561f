"""Data-parallel training: `torchrun --nproc-per-node N -m training.train ...` trains one model
on N processes (or N per machine, with --nnodes), each on its share of every batch.

Every process holds the whole data and draws the same shuffled order (the shuffling generator is
seeded alike), so every step's batch is the one a one-process run would take; process r trains on
its r-th part. After the backward pass one all-reduce sums the gradients (each weighted by its
part's size) into the gradient of the whole batch, so every process takes the same optimizer step
and the weights, their average and the validation that picks the epoch stay identical everywhere:
the run optimizes as a one-process run does, with N times the arithmetic behind each step.

Why not DistributedDataParallel: it averages gradients only of computations run through its
forward(), and training calls the model's parts (`embedding`, `parts`, the adversarial losses)
directly; the parts of a batch may differ in size by one text, where DDP's plain average would
weight them wrongly. One flat all-reduce per step is both simpler and exact.

Without torchrun (no WORLD_SIZE, or 1) every function here is a no-op and training is exactly the
one-process training it was.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# Imported before any process group exists, on purpose: this module binds the world group into the
# default arguments of its functions when first imported (Adam's first step imports it, through
# torch._dynamo), which would keep the group and its gloo threads alive past
# destroy_process_group. A gloo thread that drops the last collective's tensors while the
# interpreter exits then aborts the process (SIGABRT, "terminate called without an active
# exception"). Imported first, those defaults are None.
import torch.distributed.nn.functional
from torch import nn

from training.checkpoint import Checkpoint, CheckpointMismatch


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: torch.device
    # This process's generator for word dropout and the other per-text noise: the shuffling
    # generator must agree across processes, the noise must not (each process sees other texts).
    noise: torch.Generator


_world: World | None = None


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where to train (cuda: the GPU; under torchrun, each process its LOCAL_RANK's GPU); "
        "the trained model is evaluated and saved on the CPU",
    )


def training_device(name: str) -> torch.device:
    """The device to train on; a clear error for `cuda` where torch sees no GPU."""
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
        raise SystemExit(
            f"--device cuda: torch sees no CUDA GPU (torch {torch.__version__}, a {build} build); "
            "train on the CPU with --device cpu"
        )
    # cuBLAS is deterministic only with a fixed workspace, set before CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def start(seed: int, device: torch.device) -> None:
    """Join torchrun's process group when launched by it with more than one process.

    Call after seeding torch's global generator: each process then reseeds it with a seed of its
    own, so that dropout masks differ between processes (their initial weights may differ too:
    `same_start` gives every process rank 0's)."""
    global _world
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank()
    # Seeds no one-process run with a seed below 2**20 uses, distinct per process.
    own_seed = (seed << 20) + rank + 1
    torch.manual_seed(own_seed)
    _world = World(rank, size, device, torch.Generator().manual_seed(own_seed))
    if rank:
        # The other processes' progress lines would repeat rank 0's.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - kept open for the process's life
    print(f"data-parallel: {size} processes, {dist.get_backend()} on {device.type}")


def finish() -> None:
    """Leave the process group: after training nothing more is shared."""
    if _world is not None:
        dist.destroy_process_group()


def processes() -> int:
    return 1 if _world is None else _world.size


def is_main() -> bool:
    """Whether this process writes the artifacts, the report and the checkpoints."""
    return _world is None or _world.rank == 0


def noise(generator: torch.Generator) -> torch.Generator:
    """The generator for per-text noise: the shuffling one itself in a one-process run."""
    return generator if _world is None else _world.noise


def shard(batches: list[list[int]]) -> list[list[int]]:
    """This process's part of every batch: every r-th text from the r-th on.

    A batch of fewer texts than processes (at most the last of an epoch) is skipped, so that every
    process takes every step with some texts."""
    if _world is None:
        return batches
    rank, size = _world.rank, _world.size
    return [batch[rank::size] for batch in batches if len(batch) >= size]


def _all_reduce(flat: torch.Tensor) -> torch.Tensor:
    assert _world is not None
    on_device = flat.to(_world.device)
    dist.all_reduce(on_device)
    return on_device.to(flat.device)


def sync_gradients(model: nn.Module, texts: int) -> None:
    """Replace each process's gradient (the mean over its `texts` texts) with the mean over all
    processes' texts: the whole batch's gradient. One all-reduce of one flat tensor."""
    if _world is None:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    count = torch.tensor([float(texts)], device=grads[0].device)
    flat = _all_reduce(torch.cat([*(g.reshape(-1) * texts for g in grads), count]))
    total = flat[-1]
    offset = 0
    for p, g in zip(params, grads, strict=True):
        p.grad = (flat[offset : offset + g.numel()] / total).view_as(g)
        offset += g.numel()


def summed(*values: float) -> tuple[float, ...]:
    """Each value summed over the processes (the epoch's loss, hits and texts)."""
    if _world is None:
        return values
    return tuple(_all_reduce(torch.tensor(values, dtype=torch.float64)).tolist())


def same_start(model: nn.Module) -> None:
    """Every process starts from rank 0's weights."""
    if _world is None:
        return
    for tensor in [*model.parameters(), *model.buffers()]:
        with torch.no_grad():
            tensor.copy_(_broadcast(tensor.detach()))


def _broadcast(tensor: torch.Tensor) -> torch.Tensor:
    assert _world is not None
    on_device = tensor.to(_world.device, copy=True)
    dist.broadcast(on_device, src=0)
    return on_device.to(tensor.device)


def _flat(modules: Sequence[nn.Module]) -> torch.Tensor:
    return torch.cat(
        [t.detach().reshape(-1).float() for m in modules for t in m.state_dict().values()]
    )


def check_in_sync(*modules: nn.Module) -> None:
    """Raise unless every process holds bit-identical weights: the steps were the same."""
    if _world is None:
        return
    mine = _flat(modules).to(_world.device)
    every = [torch.empty_like(mine) for _ in range(_world.size)]
    dist.all_gather(every, mine)
    differing = [r for r, theirs in enumerate(every) if not torch.equal(theirs, mine)]
    if differing:
        raise RuntimeError(f"process {_world.rank}'s weights differ from processes {differing}'")
    print(f"data-parallel: the {_world.size} processes' weights are identical")


def save(checkpoint: Checkpoint, state: dict[str, Any]) -> None:
    """`checkpoint.save` by rank 0, with every process's noise generators: resumed on as many
    processes, each continues its own noise."""
    if _world is None:
        checkpoint.save(state)
        return
    own = {"noise": _world.noise.get_state(), "torch_rng": torch.get_rng_state()}
    every: list[dict[str, torch.Tensor] | None] = [None] * _world.size
    dist.all_gather_object(every, own)
    if _world.rank == 0:
        checkpoint.save({**state, "processes": every})


def restore(saved: dict[str, Any]) -> None:
    """After `checkpoint.restore`: this process's own noise generators back."""
    every = saved.get("processes")
    if _world is None and every is None:
        return
    if _world is None or every is None or len(every) != _world.size:
        saved_on = 1 if every is None else len(every)
        raise CheckpointMismatch(
            f"the checkpoint is of a run on {saved_on} processes, this run has {processes()}"
        )
    _world.noise.set_state(every[_world.rank]["noise"])
    torch.set_rng_state(every[_world.rank]["torch_rng"])
