"""What bench/training_bench.py times: an epoch of our training, an epoch of the minimal loop,
our full training with its test accuracy after every epoch, fastText and the TF-IDF baseline.

Ours is always the real code (training.fit.fit and fit_model with the preset as given), never a
copy of it, so the benchmark measures the training as it is when it runs.
"""

import contextlib
import io
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import fasttext
import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import training.fit
from app.core.architecture import ModelConfig
from app.core.network import RNN_TYPES, RNNClassifier
from app.core.ngrams import ngram_weights, pair_buckets
from app.core.tokenizer import PAD_ID, split_words
from training.checkpoint import Checkpoint, Checkpoints
from training.config import TrainConfig
from training.corpus import Corpus
from training.data import Example
from training.evaluation import validate
from training.fit import fit, fit_model
from training.report import tfidf_baseline
from training.train import Prepared, build_model

# The best validation accuracy on the bundled reviews (0.7733; thread=1, seed 0) of epoch 5, 10,
# 25, 50 x lr 0.1, 0.25, 0.5, 1.0 x wordNgrams 1, 2; the rest are fastText's defaults.
FASTTEXT = {"epoch": 50, "lr": 0.25, "wordNgrams": 2}

Clock = Callable[[], float]
# On a shared machine the process's CPU time is the steadier measure: another process's work does
# not count in it. With one torch thread it is the time the one core spent on training.
CLOCKS: dict[str, Clock] = {"cpu": time.process_time, "wall": time.perf_counter}


@dataclass(frozen=True)
class Outcome:
    method: str
    train_s: float  # by the run's clock, from the split texts to a trained model, its own model selection included
    test_accuracy: float
    reached_s: float | None  # when its test accuracy first reached the target (None: never)


class MinimalNet(nn.Module):
    """The preset's network as a torch user writes it: a plain embedding, the packed recurrent
    layer, max and mean pooling over the real steps, a linear layer, and (if the preset has it)
    the n-gram branch as one weighted `embedding_bag` over the words' and pairs' rows; no
    dropout."""

    def __init__(self, shape: ModelConfig) -> None:
        super().__init__()
        if shape.pooling != "max_mean" or shape.num_layers != 1:
            raise SystemExit(f"the minimal loop has max+mean pooling, one layer: {shape}")
        self.shape = shape
        self.ngrams = (
            nn.Parameter(torch.zeros(shape.vocab_size + shape.ngram_buckets, shape.num_classes))
            if shape.ngram_buckets
            else None
        )
        self.embedding = nn.Embedding(shape.vocab_size, shape.embedding_dim, padding_idx=PAD_ID)
        self.rnn = RNN_TYPES[shape.rnn_type](
            shape.embedding_dim,
            shape.hidden_dim,
            batch_first=True,
            bidirectional=shape.bidirectional,
        )
        self.dense = nn.Linear(shape.pooled_features, shape.num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.embedding(ids), lengths, batch_first=True, enforce_sorted=False
        )
        steps, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True)
        padding = (torch.arange(steps.shape[1]) >= lengths.unsqueeze(1)).unsqueeze(2)
        top = steps.masked_fill(padding, float("-inf")).amax(dim=1)
        mean = steps.sum(dim=1) / lengths.unsqueeze(1)  # padded steps are zeros
        out: torch.Tensor = self.dense(torch.cat([top, mean], dim=1))
        if self.ngrams is None:
            return out
        words, pairs = ngram_weights(ids.numpy(), lengths.numpy())
        rows = torch.cat(
            [ids, pair_buckets(ids, self.shape.ngram_buckets) + self.shape.vocab_size], 1
        )
        weights = torch.from_numpy(np.concatenate([words, pairs], axis=1))
        return out + nn.functional.embedding_bag(
            rows, self.ngrams, per_sample_weights=weights, mode="sum"
        )


@dataclass
class MinimalLoop:
    """Plain Adam at the preset's rate, shuffled batches, mean cross-entropy: nothing else."""

    model: MinimalNet
    optimizer: torch.optim.Optimizer
    batch_size: int
    generator: torch.Generator
    clock: Clock

    @classmethod
    def for_preset(
        cls, shape: ModelConfig, config: TrainConfig, seed: int, clock: Clock
    ) -> "MinimalLoop":
        model = MinimalNet(shape)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        generator = torch.Generator().manual_seed(seed)
        return cls(model, optimizer, config.batch_size, generator, clock)

    def epoch(self, data: Corpus) -> float:
        """Texts/s of one pass over `data`."""
        started = self.clock()
        self.model.train()
        order = torch.randperm(len(data), generator=self.generator).tolist()
        for start in range(0, len(order), self.batch_size):
            ids, lengths, targets = data.batch(order[start : start + self.batch_size])
            loss = nn.functional.cross_entropy(self.model(ids, lengths), targets)
            self.optimizer.zero_grad()
            torch.autograd.backward(loss)
            self.optimizer.step()
        return len(data) / (self.clock() - started)


def our_epoch(
    model: RNNClassifier, prepared: Prepared, config: TrainConfig, seed: int, clock: Clock
) -> float:
    """Texts/s of one epoch of `fit` on the training split: fit's own timing of its training
    pass (its Texts/s column), with the optimizer, averaging and class weights set up as fit does.

    Each call is a fresh fit of one epoch (a new optimizer and average, the model trained on), so
    whatever fit does per epoch is what is timed. fit times it with time.perf_counter: for the
    call, that is `clock`. Its epoch table goes nowhere."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        mock.patch.object(training.fit, "time", SimpleNamespace(perf_counter=clock)),
    ):
        fitted = fit(
            model,
            prepared.encoded["train"],
            prepared.encoded["validation"],
            replace(config, epochs=1),
            seed,
        )
    return float(fitted.history[-1]["texts_per_s"])


@dataclass(frozen=True)
class TestProbe(Checkpoint):
    """Not a checkpoint: fit hands it the state after every epoch, and it scores on test the
    model fit would return if it stopped there (the best epoch so far). The scoring is kept off
    the clock, so the times are training's alone."""

    scorer: RNNClassifier
    test: Corpus
    clock: Clock
    started: float
    points: list[tuple[float, float]] = field(default_factory=list)  # (seconds, test accuracy)
    paused: list[float] = field(default_factory=list)

    def load(self) -> dict[str, Any] | None:
        return None

    def save(self, state: dict[str, Any]) -> None:
        now = self.clock()
        self.scorer.load_state_dict(state["best_state"])
        accuracy = validate(self.scorer, self.test).accuracy
        self.points.append((now - self.started - sum(self.paused), accuracy))
        self.paused.append(self.clock() - now)


@dataclass(frozen=True)
class Probed(Checkpoints):
    """Every fit of fit_model (two with distillation) reports to the one probe."""

    probe: TestProbe

    def stage(self, number: int) -> Checkpoint:
        return self.probe


def our_training(
    prepared: Prepared,
    config: TrainConfig,
    seed: int,
    target: float,
    prepare_s: float,
    clock: Clock,
) -> tuple[Outcome, list[tuple[float, float]]]:
    """The preset's whole training (fit_model, as training.train runs it), and its test accuracy
    after every epoch against training seconds. `prepare_s` (split, vocabulary, word vectors) is
    counted in: fastText and the baseline tokenize inside their own time."""
    scorer = build_model(prepared, config)
    started = clock()
    probe = TestProbe(Path(), {}, False, scorer, prepared.encoded["test"], clock, started)
    with contextlib.redirect_stdout(io.StringIO()):
        fitted = fit_model(
            build_model(prepared, config),
            lambda: build_model(prepared, config),
            prepared.encoded["train"],
            prepared.encoded["validation"],
            config,
            seed,
            Probed(Path(), {}, False, probe),
        )
    train_s = prepare_s + clock() - started - sum(probe.paused)
    points = [(prepare_s + seconds, accuracy) for seconds, accuracy in probe.points]
    reached = next((seconds for seconds, accuracy in points if accuracy >= target), None)
    accuracy = validate(fitted.model, prepared.encoded["test"]).accuracy
    return Outcome("ours (default preset)", train_s, accuracy, reached), points


def _fasttext_line(example: Example) -> str:
    # Our tokenizer's words, so all three read the same tokens; fastText splits on spaces.
    return f"__label__{example.label.replace(' ', '_')} {' '.join(split_words(example.text))}"


def fasttext_training(
    splits: Mapping[str, Sequence[Example]], params: dict[str, Any], target: float, clock: Clock
) -> Outcome:
    started = clock()
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text(
            "\n".join(map(_fasttext_line, splits["train"])) + "\n", encoding="utf-8"
        )
        model = fasttext.train_supervised(str(train_file), thread=1, verbose=0, seed=0, **params)
    train_s = clock() - started
    accuracy = fasttext_accuracy(model, splits["test"])
    reached = train_s if accuracy >= target else None
    return Outcome(f"fastText {fasttext_settings(params)}", train_s, accuracy, reached)


def fasttext_accuracy(model: Any, examples: Sequence[Example]) -> float:
    # predict() on a list: on one text, fastText 0.9.2 calls np.array(copy=False), which numpy 2
    # refuses.
    lines = [_fasttext_line(e).split(" ", 1)[1] for e in examples]
    predicted, _ = model.predict(lines)
    gold = [_fasttext_line(e).split(" ", 1)[0] for e in examples]
    return float(sum(p[0] == g for p, g in zip(predicted, gold, strict=True)) / len(examples))


def fasttext_settings(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items())


def tfidf_training(prepared: Prepared, target: float, clock: Clock) -> Outcome:
    started = clock()
    summary, _ = tfidf_baseline(prepared.splits, prepared.labels)
    train_s = clock() - started
    accuracy = float(summary["test"]["accuracy"])
    reached = train_s if accuracy >= target else None
    return Outcome(f"TF-IDF + LR (C = {summary['C']:g} on validation)", train_s, accuracy, reached)
