"""Model directories for the tests: the bundled one, and small untrained ones built on the spot."""

from pathlib import Path

import torch

from app.core.architecture import ModelConfig
from app.core.artifacts import save_artifacts
from app.core.network import RNNClassifier, numpy_weights
from app.core.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_MODEL = ROOT / "model_artifacts"

TEXTS = [
    "a gripping , beautifully acted film",
    "dull , lifeless and far too long",
    "funny",
    "the plot goes nowhere but the cast is wonderful and the music is lovely",
]


def make_artifacts(
    directory: Path,
    rnn_type: str = "gru",
    labels: tuple[str, ...] = ("neg", "pos"),
    max_length: int = 12,
) -> Path:
    """A small untrained model with real files: fast to build, exercises every loading path."""
    torch.manual_seed(0)
    tokenizer = Tokenizer.build(TEXTS)
    model = RNNClassifier(
        ModelConfig(
            vocab_size=len(tokenizer),
            num_classes=len(labels),
            embedding_dim=8,
            hidden_dim=6,
            rnn_type=rnn_type,
        )
    )  # type: ignore[arg-type]
    save_artifacts(
        directory,
        model.config,
        numpy_weights(model),
        tokenizer,
        list(labels),
        max_length,
        name="tiny",
        version="test",
        extra={"metrics": {}},
    )
    return directory
