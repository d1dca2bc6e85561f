"""What the training tests share: flags for a model small enough to train in seconds."""

TINY = [
    *("--epochs", "2", "--embedding-dim", "8", "--hidden-dim", "8", "--max-length", "20"),
    *("--extra-vocab", "100"),
]
