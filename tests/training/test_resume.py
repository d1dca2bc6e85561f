"""A run killed with SIGKILL mid-training and resumed from its checkpoint ends where an
uninterrupted run ends: the same weights and the same report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from app.core.artifacts import WEIGHTS_FILE
from tests.support.artifacts import ROOT
from tests.support.training import TINY
from training.checkpoint import CheckpointMismatch
from training.train import main as train

# Enough epochs that the kill, as soon as the first checkpoint appears, lands well before the end.
RUN = ["--limit", "1500", *TINY, "--epochs", "8", "--patience", "0", "--threads", "1"]
# What may differ between two runs of the same training: how long they took, and how much
# memory the process reached (a few MB apart from run to run).
TIMINGS = ("wall_time_s", "texts_per_s", "peak_rss_mb")


def run_command(out: Path, checkpoints: Path) -> list[str]:
    training = [sys.executable, "-m", "training.train", *RUN]
    return [*training, "--out", str(out), "--checkpoint-dir", str(checkpoints)]


def killed_after_first_checkpoint(command: list[str], checkpoint: Path) -> int:
    """Start the training, SIGKILL it once a checkpoint exists; its return code."""
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not checkpoint.exists() and process.poll() is None:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def report_without_timings(out: Path) -> dict[str, object]:
    report = json.loads((out / "report.json").read_text())
    history = [{k: v for k, v in row.items() if k not in TIMINGS} for row in report["history"]]
    return {**{k: v for k, v in report.items() if k not in TIMINGS}, "history": history}


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    train([*RUN, "--out", str(tmp_path / "whole")])

    checkpoints = tmp_path / "checkpoints"
    command = run_command(tmp_path / "resumed", checkpoints)
    assert killed_after_first_checkpoint(command, checkpoints / "fit-1.pt") == -signal.SIGKILL
    assert not (tmp_path / "resumed" / WEIGHTS_FILE).exists()

    resumed = subprocess.run(
        [*command, "--resume"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "resuming from" in resumed.stdout

    whole = load_file(tmp_path / "whole" / WEIGHTS_FILE)
    after = load_file(tmp_path / "resumed" / WEIGHTS_FILE)
    assert whole.keys() == after.keys()
    for name, weights in whole.items():
        np.testing.assert_allclose(after[name], weights, rtol=0, atol=1e-6, err_msg=name)
    assert report_without_timings(tmp_path / "resumed") == report_without_timings(
        tmp_path / "whole"
    )


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    train([*RUN, "--epochs", "1", "--out", str(tmp_path / "a"), *checkpoints])
    with pytest.raises(CheckpointMismatch, match="another run"):
        train(
            [
                *RUN,
                "--epochs",
                "1",
                "--lr",
                "0.01",
                "--out",
                str(tmp_path / "b"),
                *checkpoints,
                "--resume",
            ]
        )
