"""The training-time embedding over pretrained vectors, and its folding into the served model.

Fine-tuning pretrained vectors directly moves the trained words away from the space the untouched
ones still live in, so a word first met at serving time would land somewhere the model never saw.
Here every word goes through one trainable map: word -> (vector + offset) @ W + b, where the
vectors are frozen and the offset (words of the training vocabulary only) is kept small by an L2
penalty. A word the training set lacks gets vector @ W + b: the same map, so the same space.
Words without a vector keep a free row with the small random init.

The served model is the unchanged `RNNClassifier`: `fold()` computes its plain embedding table from
the map, so the saved weights hold no trace of this structure.
"""

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from app.core.network import RNNClassifier
from app.core.tokenizer import PAD_ID


class MappedEmbedding(nn.Module):
    """ids [B, T] -> [B, T, E]: (vector + offset) @ W + b for words with a vector, else a free row."""

    def __init__(
        self,
        vectors: npt.NDArray[np.float32],
        has_vector: npt.NDArray[np.bool_],
        embedding_dim: int,
    ) -> None:
        super().__init__()
        vocab_size, vector_dim = vectors.shape
        self.vectors: torch.Tensor
        self.has_vector: torch.Tensor
        self.register_buffer("vectors", torch.from_numpy(np.array(vectors, np.float32)))
        self.register_buffer("has_vector", torch.from_numpy(np.array(has_vector, np.bool_)))
        self.offset = nn.Parameter(torch.zeros(vocab_size, vector_dim))
        self.map = nn.Linear(vector_dim, embedding_dim)
        # Start from the vectors as they are: a norm-preserving map, no shift.
        nn.init.orthogonal_(self.map.weight)
        if vector_dim == embedding_dim:
            nn.init.eye_(self.map.weight)
        nn.init.zeros_(self.map.bias)
        # The same small init as RNNClassifier's own embedding (see app/core/network.py), drawn
        # for every word so the draws after it do not depend on the vectors' coverage. Only the
        # words without a vector keep a row: Adam, the weight average and clipping pass over
        # every row of a table each step, and the others would never move.
        free = torch.empty(vocab_size, embedding_dim).uniform_(-0.05, 0.05)
        free[PAD_ID] = 0.0
        # Row 0 stands in for the words with a vector (torch.where never reads it, so it never
        # moves); word i without one has row free_row[i].
        without = ~self.has_vector
        self.free = nn.Parameter(torch.cat([free.new_zeros(1, embedding_dim), free[without]]))
        self.free_row: torch.Tensor
        self.register_buffer("free_row", torch.cumsum(without, 0) * without)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mapped = self.map(self.vectors[ids] + self.offset[ids])
        free = self.free[self.free_row[ids]]
        return torch.where(self.has_vector[ids].unsqueeze(-1), mapped, free)

    def table(self, extension: npt.NDArray[np.float32] | None = None) -> torch.Tensor:
        """The plain embedding table: every training word's row, then one per extension vector."""
        with torch.no_grad():
            rows = self.forward(torch.arange(self.vectors.shape[0]))
            rows[PAD_ID] = 0.0
            if extension is None or len(extension) == 0:
                return rows
            return torch.cat([rows, self.map(torch.from_numpy(np.array(extension, np.float32)))])


def use_mapped_embedding(model: RNNClassifier, embedding: MappedEmbedding) -> RNNClassifier:
    """Swap the model's embedding for the training-time one; the rest of the model is untouched."""
    model.add_module("embedding", embedding)
    return model


def fold(model: RNNClassifier, extension: npt.NDArray[np.float32] | None = None) -> RNNClassifier:
    """The plain RNNClassifier the service loads, with the same outputs as `model`.

    `extension` holds the vectors of words appended to the vocabulary after the training words;
    the n-gram branch has no scores for them (zeros: training never saw them).
    A model without a MappedEmbedding is returned as it is.
    """
    embedding = model.embedding
    if not isinstance(embedding, MappedEmbedding):
        return model
    table = embedding.table(extension)
    folded = RNNClassifier(replace(model.config, vocab_size=table.shape[0]))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("embedding.")}
    if "ngrams.words" in state:
        words = state["ngrams.words"]
        added = words.new_zeros(table.shape[0] - words.shape[0], words.shape[1])
        state["ngrams.words"] = torch.cat([words, added])
    folded.load_state_dict({**state, "embedding.weight": table}, strict=True)
    return folded.train(model.training)


def parameter_groups(
    model: RNNClassifier, offset_decay: float, ngram_decay: float
) -> list[dict[str, object]]:
    """Optimizer groups: the per-word offsets (with vectors) and the n-gram branch each get their
    own L2 penalty, nothing else gets one. The branch's penalty keeps it from memorizing rare
    pairs, which would leave the RNN little loss to learn from."""
    embedding = model.embedding
    penalized: list[tuple[list[torch.nn.Parameter], float]] = []
    if isinstance(embedding, MappedEmbedding):
        penalized.append(([embedding.offset], offset_decay))
    if model.ngrams is not None:
        penalized.append((list(model.ngrams.parameters()), ngram_decay))
    special = {id(p) for params, _ in penalized for p in params}
    others = [p for p in model.parameters() if id(p) not in special]
    return [
        {"params": others},
        *({"params": params, "weight_decay": decay} for params, decay in penalized),
    ]
