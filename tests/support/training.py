"""What the training tests share: flags for a model small enough to train in seconds, and a toy
corpus a word of which says the class."""

from training.corpus import Corpus

TINY = [
    *("--epochs", "2", "--embedding-dim", "8", "--hidden-dim", "8", "--max-length", "20"),
    *("--extra-vocab", "100"),
]


def toy_corpus(texts: int) -> Corpus:
    """Two-word texts of a 40-word vocabulary, alternating classes 0 and 1."""
    return Corpus.of([[2 + i % 30, 3 + i % 7] for i in range(texts)], [i % 2 for i in range(texts)])
