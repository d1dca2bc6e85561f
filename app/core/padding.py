"""Word id lists of different lengths as one padded batch."""

from itertools import chain

import numpy as np
import numpy.typing as npt

from app.core.tokenizer import PAD_ID


def pad(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Pad id lists to the longest one in the batch: (ids [B, T], lengths [B]), int64 arrays."""
    if len(sequences) == 1:  # the common case of one text alone: no padding to place
        return np.array(sequences, np.int64), np.array([len(sequences[0])], np.int64)
    # Vectorized: building the array row by row costs more than a small model's forward pass.
    lengths = np.fromiter(map(len, sequences), np.int64, count=len(sequences))
    flat = np.fromiter(chain.from_iterable(sequences), np.int64, count=int(lengths.sum()))
    return pad_flat(flat, lengths)


def pad_flat(
    flat: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[np.ndarray, np.ndarray]:
    """`pad` of sequences given end to end in `flat`, `lengths[i]` ids each (training's corpus
    holds them so)."""
    ids = np.full((len(lengths), int(lengths.max())), PAD_ID, np.int64)
    ids[np.arange(ids.shape[1]) < lengths[:, None]] = flat
    return ids, lengths
