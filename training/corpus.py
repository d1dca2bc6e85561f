"""The encoded corpus and its texts as flat arrays, so a million texts cost tens of MB, not the
GB that Python lists of lists (an object per id, per text) would.

A batch of a `Corpus` is padded by the service's own `pad_flat` (app/core/padding.py): what is
trained is what is served.
"""

from array import array
from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt
import torch

from app.core.padding import pad_flat
from training.data import Example

Int64s = npt.NDArray[np.int64]


class Batch(NamedTuple):
    ids: torch.Tensor  # [B, T] int64, padded with PAD_ID
    lengths: torch.Tensor  # [B] int64
    labels: torch.Tensor  # [B] int64


class Corpus:
    """Word id sequences with a label id each: text i's ids are ids[offsets[i]:offsets[i + 1]]."""

    def __init__(self, ids: npt.NDArray[np.int32], offsets: Int64s, labels: Int64s) -> None:
        if len(offsets) != len(labels) + 1 or offsets[-1] != len(ids):
            raise ValueError("offsets must bound every text's ids")
        self.ids, self.offsets, self.labels = ids, offsets, labels
        self.lengths: Int64s = np.diff(offsets)

    @classmethod
    def of(cls, sequences: Sequence[list[int]], labels: Sequence[int]) -> "Corpus":
        lengths = np.fromiter(map(len, sequences), np.int64, count=len(sequences))
        ids = np.fromiter((i for s in sequences for i in s), np.int32, count=int(lengths.sum()))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(ids, offsets, np.asarray(labels, np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def sequence(self, index: int) -> list[int]:
        return self.ids[self.offsets[index] : self.offsets[index + 1]].tolist()  # type: ignore[no-any-return]

    def batch(self, indices: Sequence[int] | range) -> Batch:
        """Texts `indices`, in that order, padded to the longest of them."""
        rows = np.asarray(indices, np.int64)
        lengths = self.lengths[rows]
        # Each id's position: its text's start plus its place within the text.
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = self.ids[np.repeat(self.offsets[rows], lengths) + within]
        ids, lengths = pad_flat(flat.astype(np.int64), lengths)
        return Batch(
            torch.from_numpy(ids), torch.from_numpy(lengths), torch.from_numpy(self.labels[rows])
        )


class TextStore(Sequence[Example]):
    """Texts as one UTF-8 buffer with offsets, and a label id each (shared with the split's
    `Corpus`): an `Example` is made only when one is asked for."""

    def __init__(self, data: bytearray, offsets: Int64s, labels: Int64s, names: list[str]) -> None:
        self.data, self.offsets, self.labels, self.names = data, offsets, labels, names

    def __len__(self) -> int:
        return len(self.labels)

    @overload
    def __getitem__(self, index: int) -> Example: ...
    @overload
    def __getitem__(self, index: slice) -> list[Example]: ...
    def __getitem__(self, index: int | slice) -> Example | list[Example]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        text = self.data[self.offsets[index] : self.offsets[index + 1]].decode()
        return Example(text, self.names[self.labels[index]])

    def __iter__(self) -> Iterator[Example]:
        return (self[i] for i in range(len(self)))


class Growing:
    """One split as it is read: its texts and provisional word and label ids, appended to
    compact buffers (array, bytearray) that grow by doubling, never to Python lists."""

    def __init__(self) -> None:
        self.text = bytearray()
        self.text_ends = array("q")
        self.ids = array("i")
        self.id_ends = array("q")
        self.labels = array("q")

    def add(self, text: str, ids: list[int], label: int) -> None:
        self.text += text.encode()
        self.text_ends.append(len(self.text))
        self.ids.extend(ids)
        self.id_ends.append(len(self.ids))
        self.labels.append(label)

    def finish(
        self, word_ids: npt.NDArray[np.int32], label_ids: Int64s, names: list[str]
    ) -> tuple[TextStore, Corpus]:
        """The split with provisional ids mapped to final ones (`word_ids[provisional]`)."""
        labels = label_ids[np.frombuffer(self.labels, np.int64)]
        texts = TextStore(self.text, _starting_at_0(self.text_ends), labels, names)
        ids = word_ids[np.frombuffer(self.ids, np.int32)]
        return texts, Corpus(ids, _starting_at_0(self.id_ends), labels)


def _starting_at_0(ends: "array[int]") -> Int64s:
    return np.concatenate([[0], np.frombuffer(ends, np.int64)]).astype(np.int64)
