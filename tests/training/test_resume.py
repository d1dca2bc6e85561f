"""A run killed with SIGKILL mid-training and resumed from its checkpoint ends where an
uninterrupted run ends: the same weights and the same report."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.artifacts import WEIGHTS_FILE
from tests.support.artifacts import ROOT
from tests.support.training import (
    RESUMABLE,
    assert_same_weights,
    killed_after_first_checkpoint,
    report_without_timings,
)
from training.checkpoint import CheckpointMismatch
from training.train import main as train


def run_command(out: Path, checkpoints: Path) -> list[str]:
    training = [sys.executable, "-m", "training.train", *RESUMABLE]
    return [*training, "--out", str(out), "--checkpoint-dir", str(checkpoints)]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    train([*RESUMABLE, "--out", str(tmp_path / "whole")])

    checkpoints = tmp_path / "checkpoints"
    command = run_command(tmp_path / "resumed", checkpoints)
    assert killed_after_first_checkpoint(command, checkpoints / "fit-1.pt") == -signal.SIGKILL
    assert not (tmp_path / "resumed" / WEIGHTS_FILE).exists()

    resumed = subprocess.run(
        [*command, "--resume"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "resuming from" in resumed.stdout

    assert_same_weights(tmp_path / "whole", tmp_path / "resumed")
    assert report_without_timings(tmp_path / "resumed") == report_without_timings(
        tmp_path / "whole"
    )


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    checkpoints = ["--checkpoint-dir", str(tmp_path / "checkpoints")]
    train([*RESUMABLE, "--epochs", "1", "--out", str(tmp_path / "a"), *checkpoints])
    with pytest.raises(CheckpointMismatch, match="another run"):
        train(
            [
                *RESUMABLE,
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
