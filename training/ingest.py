"""A data file to the training vocabulary and the encoded splits in one streamed pass.

The vocabulary is only known once every training text is counted, so words get provisional ids
as they are first seen and the finished corpus maps them to the vocabulary's ids with one numpy
lookup: the file is read once, and nothing per text is held but flat arrays (training/corpus.py).
"""

from collections import Counter
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from app.core.tokenizer import UNK_ID, Tokenizer, split_words
from training.corpus import Corpus, Growing, TextStore
from training.data import SPLITS, check_labels, split_of_digest, unique_examples

# The provisional id of a text with no words, which the tokenizer encodes as [<unk>].
NO_WORDS = 0


@dataclass
class Ingested:
    splits: dict[str, TextStore]
    encoded: dict[str, Corpus]
    labels: list[str]  # sorted: label id i is labels[i]
    tokenizer: Tokenizer  # built from the training split, as Tokenizer.build would
    train_counts: Counter[str]  # occurrences of each word in the training split

    @property
    def examples(self) -> int:
        return sum(map(len, self.splits.values()))


def ingest(
    path: Path,
    text_column: str,
    label_column: str,
    limit: int | None,
    min_freq: int,
    max_length: int,
) -> Ingested:
    """The first `limit` unique examples of the file, split by hash, with the vocabulary of the
    training split and every split's ids of its first `max_length` words (as
    `Tokenizer.encode` gives them)."""
    words: dict[str, int] = {}  # provisional ids, from 1
    labels: dict[str, int] = {}  # provisional, in order of appearance
    counts: Counter[str] = Counter()
    growing = {name: Growing() for name in SPLITS}
    for example, digest in islice(unique_examples(path, text_column, label_column), limit):
        split = split_of_digest(digest)
        tokens = split_words(example.text)
        if split == "train":
            counts.update(tokens)
        ids = [words.setdefault(w, len(words) + 1) for w in tokens[:max_length]] or [NO_WORDS]
        label = labels.setdefault(example.label, len(labels))
        growing[split].add(example.text, ids, label)
    check_labels(path, set(labels))
    tokenizer = Tokenizer.from_counts(counts, min_freq)
    word_ids = np.full(len(words) + 1, UNK_ID, np.int32)
    for word, provisional in words.items():
        word_ids[provisional] = tokenizer.index.get(word, UNK_ID)
    names = sorted(labels)
    label_ids = np.empty(len(labels), np.int64)
    for name, provisional in labels.items():
        label_ids[provisional] = names.index(name)
    # Each split's growing buffers are let go as soon as it is finished: never two copies of all.
    finished = {name: growing.pop(name).finish(word_ids, label_ids, names) for name in SPLITS}
    return Ingested(
        {name: texts for name, (texts, _) in finished.items()},
        {name: corpus for name, (_, corpus) in finished.items()},
        names,
        tokenizer,
        counts,
    )
