"""Model directories for the tests: the bundled one, and small untrained ones built on the spot."""

from pathlib import Path

import torch

from app.core.architecture import ModelConfig
from app.core.artifacts import save_artifacts
from app.core.network import RNNClassifier, numpy_weights
from app.core.ngrams import HASHING
from app.core.tokenizer import Tokenizer
from training.serving_checks import known_answers

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
    seed: int = 0,
    name: str = "tiny",
    ngram_buckets: int = 0,
) -> Path:
    """A small untrained model with real files: fast to build, exercises every loading path.
    Another `seed` gives other weights, so other answers; the known answers are its own.
    With `ngram_buckets`, an n-gram branch with random scores (a trained one's are not zero)."""
    torch.manual_seed(seed)
    tokenizer = Tokenizer.build(TEXTS)
    model = RNNClassifier(
        ModelConfig(
            vocab_size=len(tokenizer),
            num_classes=len(labels),
            embedding_dim=8,
            hidden_dim=6,
            rnn_type=rnn_type,  # type: ignore[arg-type]
            ngram_buckets=ngram_buckets,
            ngram_hashing=HASHING if ngram_buckets else "",
        )
    )
    if model.ngrams is not None:
        with torch.no_grad():
            for scores in model.ngrams.parameters():
                scores.normal_()
    model.eval()
    known = known_answers(model, tokenizer, TEXTS, max_length)
    extra = {"metrics": {}, "monitoring": {"unknown_word_share": 0.1}}
    save_artifacts(
        directory,
        model.config,
        numpy_weights(model),
        tokenizer,
        list(labels),
        max_length,
        name=name,
        version="test",
        extra=extra,
        known_answers=known,
    )
    return directory


def make_repository(root: Path, models: dict[str, list[int]]) -> Path:
    """MODEL_REPOSITORY layout: for each model its versions, each from its own seed (so every
    version answers differently)."""
    for name, versions in models.items():
        for version in versions:
            make_artifacts(root / name / str(version), seed=version, name=name)
    return root
