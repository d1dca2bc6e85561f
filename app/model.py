"""The classifier: word ids -> embedding -> recurrent layer -> dense -> class scores.

Sequences are packed, so the recurrent layer never reads padding, and pooling masks it out: a
text gets the same probabilities alone as inside a batch of longer texts.
"""

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from app.tokenizer import PAD_ID

RNN_TYPES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    num_classes: int
    embedding_dim: int = 128
    hidden_dim: int = 128
    rnn_type: Literal["rnn", "gru", "lstm"] = "gru"
    bidirectional: bool = True
    dropout: float = 0.5
    # "last": the final hidden state (the seed's Keras-style RNN); "max": max over all time
    # steps, which keeps strong words from early in a long review.
    pooling: Literal["last", "max"] = "max"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def collate(
    sequences: list[list[int]], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists to the longest one in the batch; return (ids [B, T], lengths [B])."""
    lengths = torch.tensor([len(seq) for seq in sequences], dtype=torch.long)
    ids = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids.to(device), lengths


class RNNClassifier(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.rnn = RNN_TYPES[config.rnn_type](
            config.embedding_dim,
            config.hidden_dim,
            batch_first=True,
            bidirectional=config.bidirectional,
        )
        self.dropout = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.dense = nn.Linear(config.hidden_dim * directions, config.num_classes)

    def encode(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Recurrent layer over the real tokens only: [B, T, E] -> [B, H * directions]."""
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, hidden = self.rnn(packed)
        if self.config.pooling == "last":
            if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
                hidden = hidden[0]
            # hidden: [layers * directions, B, H]; the last layer's directions, side by side.
            directions = 2 if self.config.bidirectional else 1
            return torch.cat(list(hidden[-directions:]), dim=-1)
        padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=float("-inf"))
        return padded.max(dim=1).values

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) [B, C]; softmax them for probabilities."""
        embedded = self.dropout(self.embedding(ids))
        return self.dense(self.dropout(self.encode(embedded, lengths)))

    def trace(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage of one forward pass, for looking at a prediction layer by layer."""
        embedded = self.embedding(ids)
        features = self.encode(embedded, lengths)
        logits = self.dense(features)
        return {
            "token_ids": ids,
            "embedding": embedded,
            "rnn": features,
            "dense": logits,
            "softmax": torch.softmax(logits, dim=-1),
        }
