"""The training loop: epochs over the training split, validation, early stopping, weight averaging."""

import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from app.core.network import RNNClassifier
from app.core.tokenizer import PAD_ID, UNK_ID
from training import distributed
from training.adversarial import adversarial_loss, virtual_adversarial_loss
from training.balance import class_weights
from training.batching import shuffled_batches
from training.checkpoint import Checkpoint, Checkpoints, capture, restore
from training.config import TrainConfig
from training.corpus import Corpus
from training.embedding import parameter_groups
from training.evaluation import Scores, predict_logits, selection_key, validate

CLIP_NORM = 5.0


@dataclass
class Fitted:
    model: RNNClassifier  # the best epoch's weights (the averaged copy when averaging is on)
    history: list[dict[str, float]]
    best_epoch: int
    class_weights: torch.Tensor | None = None  # the per-class loss weights training used


def warmed_up_ema(
    decay: float,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | int], torch.Tensor]:
    """Exponential moving average whose decay ramps up as (1 + n) / (10 + n), capped at `decay`.

    With a fixed decay, a short run (a small data set) would ship an average still dominated by
    its first, untrained steps; the ramp makes it follow the model closely at first.
    """

    def average(
        averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor | int
    ) -> torch.Tensor:
        steps = int(num_averaged)
        rate = min(decay, (1 + steps) / (10 + steps))
        # Per tensor, not torch._foreach_lerp_: that one's rounding differed between two runs
        # of the same command, and a run must repeat bit for bit. In place: one pass over the
        # tables instead of four; AveragedModel then copies the result onto itself, which torch
        # skips.
        return averaged.lerp_(current, 1 - rate)

    return average


def _branch_kept(ngrams: torch.Tensor, dropout: float, generator: torch.Generator) -> torch.Tensor:
    """The n-gram branch's logits with the branch switched off for a random `dropout` share of
    the batch's texts: on those the RNN must answer alone, so it does not leave to the branch
    what it could learn itself (the branch knows only in-domain words and pairs)."""
    if not dropout:
        return ngrams
    kept = torch.rand(ngrams.shape[0], 1, generator=generator).to(ngrams.device) >= dropout
    return ngrams * kept


def _step_loss(
    model: RNNClassifier,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    criterion: Callable[[torch.Tensor], torch.Tensor],
    config: TrainConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed training loss, its clean part, the clean logits) of one batch: the training loss
    adds the adversarial and virtual adversarial losses when they are on."""
    embedded = model.embedding(ids)
    rnn, ngrams = model.parts(embedded, lengths, ids)
    logits = rnn if ngrams is None else rnn + _branch_kept(ngrams, config.ngram_dropout, generator)
    clean = criterion(logits)
    loss = clean
    if config.adversarial:
        loss = loss + adversarial_loss(
            model, ids, embedded, lengths, clean, criterion, config.adversarial
        )
    if config.virtual_adversarial:
        loss = loss + virtual_adversarial_loss(
            model, ids, embedded, lengths, logits, config.virtual_adversarial, generator
        )
    return loss, clean, logits


def train_epoch(
    model: RNNClassifier,
    data: Corpus,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    config: TrainConfig,
    averaged: AveragedModel | None,
    desc: str,
    teacher: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[float, float]:
    """One shuffled pass of training steps. Returns (mean clean loss, accuracy) over the pass.

    Word dropout replaces random words by <unk>, so the model cannot lean on a few memorized
    words and learns what unknown words at serving time look like.
    """
    model.train()
    device = next(model.parameters()).device
    lengths = torch.from_numpy(data.lengths)
    batches = shuffled_batches(lengths, config.batch_size, generator, config.length_batches)
    batches, noise = distributed.shard(batches), distributed.noise(generator)
    loss_fn = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(device),
        reduction="sum",
        label_smoothing=config.label_smoothing,
    )
    total_loss, correct, seen = 0.0, 0, 0
    # A log file is no terminal: there the bar's every redraw would be a line of its own. The bar
    # counts texts, so it shows texts/s and the epoch's remaining time.
    bar = tqdm(
        total=len(data), desc=desc, unit="text", leave=False, disable=not sys.stderr.isatty()
    )
    for batch in batches:
        ids, lengths, targets = data.batch(batch)
        ids, targets = ids.to(device), targets.to(device)
        if config.word_dropout:
            dropped = torch.rand(ids.shape, generator=noise).to(device) < config.word_dropout
            ids = ids.masked_fill(dropped & (ids != PAD_ID), UNK_ID)
        if teacher is None:
            goal = targets
        else:
            labels = nn.functional.one_hot(targets, model.config.num_classes).float()
            goal = (1 - config.distill) * labels + config.distill * teacher[batch].to(device)
        loss, clean, logits = _step_loss(
            model, ids, lengths, partial(loss_fn, target=goal), config, noise
        )
        optimizer.zero_grad()
        torch.autograd.backward(loss / len(batch))
        distributed.sync_gradients(model, len(batch))
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        if averaged is not None:
            averaged.update_parameters(model)
        total_loss += clean.item()
        correct += int((logits.argmax(dim=1) == targets).sum())
        seen += len(batch)
        bar.update(len(batch))
    bar.close()
    loss_sum, hits, texts = distributed.summed(total_loss, correct, seen)
    return loss_sum / texts, hits / texts


def fit_model(
    model: RNNClassifier,
    new_model: Callable[[], RNNClassifier],
    train: Corpus,
    validation: Corpus,
    config: TrainConfig,
    seed: int,
    checkpoints: Checkpoints | None = None,
) -> Fitted:
    """`fit` the model; with `distill`, then fit `new_model()` on targets that blend the labels
    with the first model's probabilities on the (unperturbed) training texts.

    The probabilities carry what the first model learned about how sure to be of each text, which
    a one-hot label cannot say (self-distillation, "born-again networks").
    """
    stage = checkpoints.stage if checkpoints is not None else lambda _: None
    first = fit(model, train, validation, config, seed, checkpoint=stage(1))
    if not config.distill:
        return first
    teacher = torch.softmax(predict_logits(first.model, train), dim=-1)
    return fit(new_model(), train, validation, config, seed, teacher, stage(2))


def _record(
    history: list[dict[str, float]],
    epoch: int,
    lr: float,
    train: tuple[float, float],
    validation: Scores,
    texts_per_s: float,
) -> None:
    """One row of the epoch table: kept in the history and printed."""
    train_loss, train_acc = train
    history.append(
        {
            "epoch": epoch,
            "lr": lr,
            "train_loss": round(train_loss, 4),
            "train_accuracy": round(train_acc, 4),
            "val_loss": round(validation.loss, 4),
            "val_accuracy": round(validation.accuracy, 4),
            "val_macro_f1": round(validation.macro_f1, 4),
            "texts_per_s": round(texts_per_s, 1),
        }
    )
    print(
        f"{epoch:>5}  {train_loss:.4f}  {train_acc:.4f}    {validation.loss:.4f}    "
        f"{validation.accuracy:.4f}        {validation.macro_f1:.4f}  {texts_per_s:>9.0f}"
    )


def _learning_rate_cut(
    optimizer: torch.optim.Optimizer, decay: float
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """With `decay`, the rate is cut after each epoch without a better validation loss: the same
    notion of "better" as early stopping (threshold 0)."""
    if not decay:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=decay, patience=0, threshold=0.0
    )


def fit(
    model: RNNClassifier,
    train: Corpus,
    validation: Corpus,
    config: TrainConfig,
    seed: int,
    teacher: torch.Tensor | None = None,
    checkpoint: Checkpoint | None = None,
) -> Fitted:
    """Train for up to `epochs`, keeping the epoch with the best validation score
    (`selection_key`); stop after `patience` epochs without a better one.

    `teacher`: probabilities [N, C] over the training texts, blended into the targets.
    `checkpoint`: where each epoch's state is saved and, when resuming, read back from."""
    distributed.same_start(model)
    # fused: one pass over each table per step instead of a dozen ops (Adam was a fifth of an
    # epoch). Its rounding differs from the per-tensor loop's, so seeds land elsewhere within
    # their spread (README, "Training speed": the 3-seed check); runs still repeat bit for bit.
    optimizer = torch.optim.Adam(
        parameter_groups(model, config.offset_decay, config.ngram_decay), lr=config.lr, fused=True
    )
    # An exponential moving average of the weights is what gets validated and shipped: it sits
    # in a flatter region than the last step's weights and generalizes better.
    averaged = (
        AveragedModel(model, avg_fn=warmed_up_ema(config.ema_decay)) if config.ema_decay else None
    )
    evaluated = cast(RNNClassifier, averaged.module) if averaged is not None else model
    plateau = _learning_rate_cut(optimizer, config.lr_decay)
    generator = torch.Generator().manual_seed(seed)
    weights = class_weights(train.labels.tolist(), model.config.num_classes, config.class_weight)
    history: list[dict[str, float]] = []
    best_key: tuple[float, ...] = (float("inf"),)
    best_state, best_epoch = copy.deepcopy(evaluated.state_dict()), 0
    first_epoch, stopped = 1, False
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        restore(saved, model, optimizer, averaged, plateau, generator)
        distributed.restore(saved)
        history, best_state, best_epoch = saved["history"], saved["best_state"], saved["best_epoch"]
        best_key, first_epoch, stopped = (
            tuple(saved["best_key"]),
            saved["epoch"] + 1,
            saved["stopped"],
        )
    print("Epoch  Loss    Accuracy  Val loss  Val accuracy  Val macro-F1    Texts/s")
    for epoch in range(first_epoch, 0 if stopped else config.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        trained = train_epoch(
            model, train, optimizer, generator, config, averaged, f"epoch {epoch}", teacher, weights
        )
        texts_per_s = len(train) / (time.perf_counter() - started)
        scores = validate(evaluated, validation)
        _record(history, epoch, lr, trained, scores, texts_per_s)
        if plateau is not None:
            plateau.step(scores.loss)
        key = selection_key(scores, by_macro_f1=weights is not None)
        # Without patience (the seed preset) the last epoch is kept.
        if not config.patience or key < best_key:
            best_state, best_key, best_epoch = copy.deepcopy(evaluated.state_dict()), key, epoch
        elif epoch - best_epoch >= config.patience:
            print(f"early stop: no better validation score for {config.patience} epochs")
            stopped = True
        if checkpoint is not None:
            distributed.save(
                checkpoint,
                {
                    **capture(model, optimizer, averaged, plateau, generator),
                    **{"epoch": epoch, "stopped": stopped, "history": history},
                    **{"best_state": best_state, "best_key": best_key, "best_epoch": best_epoch},
                },
            )
        if stopped:
            break
    evaluated.load_state_dict(best_state)
    distributed.check_in_sync(model, evaluated)
    return Fitted(evaluated.eval(), history, best_epoch, weights)
