"""Checkpoints after every epoch, so a run killed at epoch 30 resumes at epoch 31 instead of 1.

A checkpoint holds everything the next epoch depends on: the weights, the optimizer's moments, the
averaged weights, the learning-rate cut's state, both random generators (the shuffling and word
dropout one, torch's global one that dropout draws from), the history and the best epoch so far.
With `--threads 1` a resumed run therefore ends with the same weights as one never interrupted.

Each checkpoint is written beside the last and renamed over it, so a crash mid-write leaves the
previous one whole. A checkpoint records the run it belongs to (hyperparameters, seed, data);
`--resume` refuses one from another run rather than mixing two.
"""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


def add_checkpoint_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        help="write a checkpoint here after every epoch (the previous one stays whole until the "
        "new one is complete)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --checkpoint-dir: continue from its checkpoint (the same command as the "
        "interrupted run, plus --resume)",
    )


def check_checkpoint_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.resume and args.checkpoint_dir is None:
        parser.error("--resume continues from a checkpoint: give --checkpoint-dir")


class CheckpointMismatch(SystemExit):
    """The checkpoint on disk belongs to another run (other hyperparameters, seed or data)."""


@dataclass(frozen=True)
class Checkpoint:
    """Where one fit (the first, or with --distill the second) keeps its state."""

    path: Path
    run: dict[str, Any]  # what identifies the run: a checkpoint of another run is refused
    resume: bool

    def load(self) -> dict[str, Any] | None:
        """The saved state to continue from, or None to start afresh."""
        if not self.resume or not self.path.exists():
            return None
        state: dict[str, Any] = torch.load(self.path, weights_only=True)
        if state["run"] != self.run:
            raise CheckpointMismatch(
                f"{self.path} is from another run: {state['run']} (this run: {self.run})"
            )
        print(f"resuming from {self.path} after epoch {state['epoch']}")
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Atomically: written to a temporary file, flushed to disk, renamed over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("wb") as f:
            torch.save({**state, "run": self.run}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)


@dataclass(frozen=True)
class Checkpoints:
    directory: Path
    run: dict[str, Any]
    resume: bool

    def stage(self, number: int) -> Checkpoint:
        return Checkpoint(self.directory / f"fit-{number}.pt", self.run, self.resume)


def checkpoints_for(args: argparse.Namespace, run: dict[str, Any]) -> Checkpoints | None:
    """The run's checkpoints (None without --checkpoint-dir); `run` identifies the run."""
    if args.checkpoint_dir is None:
        return None
    return Checkpoints(args.checkpoint_dir, run, args.resume)


def capture(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    averaged: torch.nn.Module | None,
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
    generator: torch.Generator,
) -> dict[str, Any]:
    """The training objects' state, as `restore` puts it back."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "averaged": None if averaged is None else averaged.state_dict(),
        "plateau": None if plateau is None else plateau.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def restore(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    averaged: torch.nn.Module | None,
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
    generator: torch.Generator,
) -> None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if averaged is not None:
        averaged.load_state_dict(state["averaged"])
    if plateau is not None:
        plateau.load_state_dict(state["plateau"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
