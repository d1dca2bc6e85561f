"""What the training tests share: flags for a model small enough to train in seconds, and a toy
corpus a word of which says the class, and the pieces of the tests that kill a run and resume it."""

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from app.core.artifacts import WEIGHTS_FILE
from tests.support.artifacts import ROOT
from training.corpus import Corpus

TINY = [
    *("--epochs", "2", "--embedding-dim", "8", "--hidden-dim", "8", "--max-length", "20"),
    *("--extra-vocab", "100"),
]
# Enough epochs that the kill, as soon as the first checkpoint appears, lands well before the end.
RESUMABLE = ["--limit", "1500", *TINY, "--epochs", "8", "--patience", "0", "--threads", "1"]
# What may differ between two runs of the same training: how long they took, and how much
# memory the process reached (a few MB apart from run to run).
TIMINGS = ("wall_time_s", "texts_per_s", "peak_rss_mb")


def toy_corpus(texts: int) -> Corpus:
    """Two-word texts of a 40-word vocabulary, alternating classes 0 and 1."""
    return Corpus.of([[2 + i % 30, 3 + i % 7] for i in range(texts)], [i % 2 for i in range(texts)])


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants: torchrun starts each training process in a session
    of its own, so killing the launcher's process group would leave them training."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        children = [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except FileNotFoundError:  # it has exited (and been reaped) meanwhile
        return []
    return [pid, *(p for child in children for p in process_tree(child))]


def kill_tree(pid: int) -> None:
    for member in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def killed_after_first_checkpoint(command: list[str], checkpoint: Path) -> int:
    """Start the training, SIGKILL it once a checkpoint exists; its return code. Every process
    of the run is killed at once, as a crash of the machine would: under torchrun the launcher
    and each training process."""
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not checkpoint.exists() and process.poll() is None:
            time.sleep(0.01)
        kill_tree(process.pid)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()


def report_without_timings(out: Path) -> dict[str, object]:
    report = json.loads((out / "report.json").read_text())
    history = [{k: v for k, v in row.items() if k not in TIMINGS} for row in report["history"]]
    return {**{k: v for k, v in report.items() if k not in TIMINGS}, "history": history}


def assert_same_weights(expected: Path, actual: Path) -> None:
    """The two artifact directories' weights agree to 1e-6, tensor by tensor."""
    whole, after = load_file(expected / WEIGHTS_FILE), load_file(actual / WEIGHTS_FILE)
    assert whole.keys() == after.keys()
    for name, weights in whole.items():
        np.testing.assert_allclose(after[name], weights, rtol=0, atol=1e-6, err_msg=name)
