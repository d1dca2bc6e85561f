"""The network's shape: what `config.json` records and both engines build from."""

from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    num_classes: int
    embedding_dim: int = 128
    hidden_dim: int = 128
    rnn_type: Literal["rnn", "gru", "lstm"] = "gru"
    bidirectional: bool = True
    dropout: float = 0.5
    # "last": the final hidden state (a Keras-style RNN); "max": max over all time steps, which
    # keeps strong words from early in a long review; "max_mean": both max and mean.
    pooling: Literal["last", "max", "max_mean"] = "max"
    num_layers: int = 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
