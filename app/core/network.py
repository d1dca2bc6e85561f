"""The classifier: word ids -> embedding -> recurrent layer -> dense -> class scores, plus (when
the config has one) the n-gram branch's scores (app/core/ngrams.py).

Sequences are packed, so the recurrent layer never reads padding, and pooling masks it out: a
text gets the same probabilities alone as inside a batch of longer texts.
"""

from typing import cast

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from app.core.architecture import ModelConfig
from app.core.artifacts import Weights
from app.core.gru_scan import gru_states
from app.core.ngrams import ngram_weights, pair_buckets
from app.core.padding import pad
from app.core.tokenizer import PAD_ID

RNN_TYPES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def numpy_weights(model: nn.Module) -> Weights:
    """The state dict as float32 numpy arrays, by torch's names: what the weights file holds."""
    return {name: t.detach().cpu().float().numpy() for name, t in model.state_dict().items()}


def from_weights(config: ModelConfig, weights: Weights) -> "RNNClassifier":
    """The network in eval mode with these (verified) weights."""
    model = RNNClassifier(config)
    model.load_state_dict({name: torch.from_numpy(t) for name, t in weights.items()}, strict=True)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def collate(
    sequences: list[list[int]], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """`pad` as tensors: ids [B, T] on `device`, lengths [B] on CPU (as packing wants them)."""
    ids, lengths = pad(sequences)
    return torch.from_numpy(ids).to(device), torch.from_numpy(lengths)


class NgramBranch(nn.Module):
    """A row of class scores per word and per pair bucket; a text's scores are their mean.

    Starts at zero, so the network begins as the plain RNN and the branch learns what it adds."""

    def __init__(self, vocab_size: int, buckets: int, num_classes: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.words = nn.Parameter(torch.zeros(vocab_size, num_classes))
        self.pairs = nn.Parameter(torch.zeros(buckets, num_classes))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T] ids (padded), [B] lengths -> [B, C] scores."""
        word_weights, pair_weights = (
            torch.from_numpy(w).to(ids.device)
            for w in ngram_weights(ids.cpu().numpy(), lengths.numpy())
        )
        words = nn.functional.embedding(ids, self.words) * word_weights.unsqueeze(-1)
        pairs = nn.functional.embedding(pair_buckets(ids, self.buckets), self.pairs)
        return words.sum(dim=1) + (pairs * pair_weights.unsqueeze(-1)).sum(dim=1)


class RNNClassifier(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        # Small initial vectors (Keras' default range): N(0, 1) ones saturate the recurrent gates
        # and the model learns far slower from scratch.
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        self.rnn = RNN_TYPES[config.rnn_type](
            config.embedding_dim,
            config.hidden_dim,
            batch_first=True,
            bidirectional=config.bidirectional,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self._mean = config.pooling == "max_mean"
        features = config.hidden_dim * directions * (2 if self._mean else 1)
        self.dense = nn.Linear(features, config.num_classes)
        self.ngrams = (
            NgramBranch(config.vocab_size, config.ngram_buckets, config.num_classes)
            if config.ngram_buckets
            else None
        )

    def encode(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Recurrent layer over the real tokens only: [B, T, E] -> [B, H * directions]."""
        # Training runs a one-layer GRU as app/core/gru_scan.py's scan: the same function at a
        # fraction of the packed GRU's per-step ops (README, "Training speed").
        if self.training and self.config.rnn_type == "gru" and self.config.num_layers == 1:
            return self._pooled(gru_states(cast(nn.GRU, self.rnn), embedded, lengths), lengths)
        # Without padding (one text, or equal lengths) packing changes nothing but costs time.
        padded_batch = bool((lengths != embedded.shape[1]).any())
        inputs = (
            pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
            if padded_batch
            else embedded
        )
        outputs, hidden = self.rnn(inputs)
        if self.config.pooling == "last":
            if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
                hidden = hidden[0]
            # hidden: [layers * directions, B, H]; the last layer's directions, side by side.
            directions = 2 if self.config.bidirectional else 1
            return torch.cat(list(hidden[-directions:]), dim=-1)
        if not padded_batch:
            pooled = outputs.max(dim=1).values
            return torch.cat([pooled, outputs.mean(dim=1)], -1) if self._mean else pooled
        padded, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=float("-inf"))
        pooled = padded.max(dim=1).values
        if not self._mean:
            return pooled
        real = padded.masked_fill(padded == float("-inf"), 0.0)
        mean = real.sum(dim=1) / lengths.to(real.device).unsqueeze(1)
        return torch.cat([pooled, mean], dim=-1)

    def _pooled(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`encode`'s pooling of the states of every step [D, B, T, H] (gru_states) over each
        text's real steps: [B, D * H], directions side by side (and max before mean)."""
        ends = lengths.to(states.device)
        if self.config.pooling == "last":
            last = ends.view(1, -1, 1, 1).expand(states.shape[0], -1, 1, states.shape[3]) - 1
            return torch.cat(list(states.gather(2, last).squeeze(2)), dim=-1)
        padding = torch.arange(states.shape[2], device=states.device) >= ends.unsqueeze(1)
        padding = padding.unsqueeze(-1)
        pooled = [states.masked_fill(padding, float("-inf")).amax(dim=2)]
        if self._mean:
            pooled.append(states.masked_fill(padding, 0.0).sum(dim=2) / ends.view(1, -1, 1))
        return torch.cat([direction for kind in pooled for direction in kind], dim=-1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) [B, C]; softmax them for probabilities."""
        return self.forward_from_embedded(self.embedding(ids), lengths, ids)

    def forward_from_embedded(
        self, embedded: torch.Tensor, lengths: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        """`forward` from the word vectors [B, T, E] of `ids` on: training perturbs them
        (adversarial training), so it needs the rest of the network as a function of the vectors.
        The n-gram branch reads the ids themselves."""
        rnn, ngrams = self.parts(embedded, lengths, ids)
        return rnn if ngrams is None else rnn + ngrams

    def parts(
        self, embedded: torch.Tensor, lengths: torch.Tensor, ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits' two terms: the RNN's dense layer [B, C] and the n-gram branch's (None
        without one). Training reports what each alone gets right."""
        features = self.encode(self.dropout(embedded), lengths)
        rnn: torch.Tensor = self.dense(self.dropout(features))
        return rnn, None if self.ngrams is None else self.ngrams(ids, lengths)

    def trace(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage of one forward pass, for looking at a prediction layer by layer.

        `rnn_steps` is the recurrent layer's output at every time step (zeros at padding),
        `rnn` the pooled features the dense layer reads, `dense` the logits (with the n-gram
        branch's, `ngrams`, added when there is one).
        """
        embedded = self.embedding(ids)
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        steps, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True)
        features = self.encode(embedded, lengths)
        logits = self.dense(features)
        stages = {"token_ids": ids, "embedding": embedded, "rnn_steps": steps, "rnn": features}
        if self.ngrams is not None:
            stages["ngrams"] = self.ngrams(ids, lengths)
            logits = logits + stages["ngrams"]
        return {**stages, "dense": logits, "softmax": torch.softmax(logits, dim=-1)}
