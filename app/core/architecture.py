"""The network's shape: what `config.json` records, what the weights file must hold, and what both
engines build from."""

from dataclasses import asdict, dataclass
from typing import Literal

# Gate blocks stacked in each recurrent weight matrix (torch's layout).
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


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
    # The n-gram branch (app/core/ngrams.py): pair buckets, 0 = no branch. `ngram_hashing` names
    # how pairs were hashed, so a service that hashes otherwise can refuse the model.
    ngram_buckets: int = 0
    ngram_hashing: str = ""

    def to_dict(self) -> dict[str, object]:
        """Without a branch, the n-gram fields are left out: such a config.json reads the same as
        before the branch existed, so older services still load it."""
        fields = asdict(self)
        if not self.ngram_buckets:
            del fields["ngram_buckets"], fields["ngram_hashing"]
        return fields

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def pooled_features(self) -> int:
        """Size of the vector the dense layer reads."""
        return self.hidden_dim * self.directions * (2 if self.pooling == "max_mean" else 1)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor of the weights file, by torch's state dict names, and its shape."""
        gates = GATES[self.rnn_type] * self.hidden_dim
        shapes: dict[str, tuple[int, ...]] = {
            "embedding.weight": (self.vocab_size, self.embedding_dim)
        }
        for layer in range(self.num_layers):
            inputs = self.embedding_dim if layer == 0 else self.hidden_dim * self.directions
            for suffix in [f"_l{layer}", f"_l{layer}_reverse"][: self.directions]:
                shapes[f"rnn.weight_ih{suffix}"] = (gates, inputs)
                shapes[f"rnn.weight_hh{suffix}"] = (gates, self.hidden_dim)
                shapes[f"rnn.bias_ih{suffix}"] = (gates,)
                shapes[f"rnn.bias_hh{suffix}"] = (gates,)
        shapes["dense.weight"] = (self.num_classes, self.pooled_features)
        shapes["dense.bias"] = (self.num_classes,)
        if self.ngram_buckets:
            shapes["ngrams.words"] = (self.vocab_size, self.num_classes)
            shapes["ngrams.pairs"] = (self.ngram_buckets, self.num_classes)
        return shapes
