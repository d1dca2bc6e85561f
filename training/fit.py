"""The training loop: epochs over the training split, validation, early stopping, weight averaging."""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from app.core.network import RNNClassifier, collate
from app.core.tokenizer import PAD_ID, UNK_ID
from training.config import TrainConfig
from training.embedding import mapped_parameter_groups

# (word ids, label id) pairs
Encoded = list[tuple[list[int], int]]

EVAL_BATCH_SIZE = 256
CLIP_NORM = 5.0


@dataclass
class Fitted:
    model: RNNClassifier  # the best epoch's weights (the averaged copy when averaging is on)
    history: list[dict[str, float]]
    best_epoch: int


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
        return averaged + (current - averaged) * (1 - rate)

    return average


def train_epoch(
    model: RNNClassifier,
    data: Encoded,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    config: TrainConfig,
    averaged: AveragedModel | None,
    desc: str,
    teacher: torch.Tensor | None = None,
) -> tuple[float, float]:
    """One shuffled pass of training steps. Returns (mean loss, accuracy) over the pass.

    Word dropout replaces random words by <unk>, so the model cannot lean on a few memorized
    words and learns what unknown words at serving time look like.
    """
    model.train()
    order = torch.randperm(len(data), generator=generator).tolist()
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    loss_fn = nn.CrossEntropyLoss(reduction="sum", label_smoothing=config.label_smoothing)
    total_loss, correct = 0.0, 0
    for batch in tqdm(batches, desc=desc, leave=False):
        ids, lengths = collate([data[i][0] for i in batch])
        targets = torch.tensor([data[i][1] for i in batch])
        if config.word_dropout:
            dropped = torch.rand(ids.shape, generator=generator) < config.word_dropout
            ids = ids.masked_fill(dropped & (ids != PAD_ID), UNK_ID)
        logits = model(ids, lengths)
        if teacher is None:
            loss = loss_fn(logits, targets)
        else:
            labels = nn.functional.one_hot(targets, logits.shape[1]).float()
            loss = loss_fn(logits, (1 - config.distill) * labels + config.distill * teacher[batch])
        optimizer.zero_grad()
        (loss / len(batch)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        if averaged is not None:
            averaged.update_parameters(model)
        total_loss += loss.item()
        correct += int((logits.argmax(dim=1) == targets).sum())
    return total_loss / len(data), correct / len(data)


@torch.inference_mode()
def predict_logits(model: RNNClassifier, ids: list[list[int]]) -> torch.Tensor:
    """Class scores [N, C] in eval mode, in batches."""
    model.eval()
    chunks = [
        model(*collate(ids[i : i + EVAL_BATCH_SIZE])) for i in range(0, len(ids), EVAL_BATCH_SIZE)
    ]
    return torch.cat(chunks)


def evaluate(model: RNNClassifier, data: Encoded) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on labelled data."""
    logits = predict_logits(model, [ids for ids, _ in data])
    targets = torch.tensor([label for _, label in data])
    loss = nn.functional.cross_entropy(logits, targets).item()
    return loss, float((logits.argmax(dim=1) == targets).float().mean())


def fit_model(
    model: RNNClassifier,
    new_model: Callable[[], RNNClassifier],
    train: Encoded,
    validation: Encoded,
    config: TrainConfig,
    seed: int,
) -> Fitted:
    """`fit` the model; with `distill`, then fit `new_model()` on targets that blend the labels
    with the first model's probabilities on the (unperturbed) training texts.

    The probabilities carry what the first model learned about how sure to be of each text, which
    a one-hot label cannot say (self-distillation, "born-again networks").
    """
    first = fit(model, train, validation, config, seed)
    if not config.distill:
        return first
    teacher = torch.softmax(predict_logits(first.model, [ids for ids, _ in train]), dim=-1)
    return fit(new_model(), train, validation, config, seed, teacher)


def _record(
    history: list[dict[str, float]],
    epoch: int,
    lr: float,
    train: tuple[float, float],
    validation: tuple[float, float],
) -> None:
    """One row of the epoch table: kept in the history and printed."""
    (train_loss, train_acc), (val_loss, val_acc) = train, validation
    history.append(
        {
            "epoch": epoch,
            "lr": lr,
            "train_loss": round(train_loss, 4),
            "train_accuracy": round(train_acc, 4),
            "val_loss": round(val_loss, 4),
            "val_accuracy": round(val_acc, 4),
        }
    )
    print(f"{epoch:>5}  {train_loss:.4f}  {train_acc:.4f}    {val_loss:.4f}    {val_acc:.4f}")


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
    train: Encoded,
    validation: Encoded,
    config: TrainConfig,
    seed: int,
    teacher: torch.Tensor | None = None,
) -> Fitted:
    """Train for up to `epochs`, keeping the epoch with the best validation loss.

    `teacher`: probabilities [N, C] over the training texts, blended into the targets."""
    optimizer = torch.optim.Adam(mapped_parameter_groups(model, config.offset_decay), lr=config.lr)
    # An exponential moving average of the weights is what gets validated and shipped: it sits
    # in a flatter region than the last step's weights and generalizes better.
    averaged = (
        AveragedModel(model, avg_fn=warmed_up_ema(config.ema_decay)) if config.ema_decay else None
    )
    evaluated = cast(RNNClassifier, averaged.module) if averaged is not None else model
    plateau = _learning_rate_cut(optimizer, config.lr_decay)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best_state, best_loss, best_epoch = copy.deepcopy(evaluated.state_dict()), float("inf"), 0
    print("Epoch  Loss    Accuracy  Val loss  Val accuracy")
    for epoch in range(1, config.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        trained = train_epoch(
            model, train, optimizer, generator, config, averaged, f"epoch {epoch}", teacher
        )
        val_loss, val_acc = evaluate(evaluated, validation)
        _record(history, epoch, lr, trained, (val_loss, val_acc))
        if plateau is not None:
            plateau.step(val_loss)
        # Without patience (the seed preset) the last epoch is kept.
        if not config.patience or val_loss < best_loss:
            best_state, best_loss, best_epoch = (
                copy.deepcopy(evaluated.state_dict()),
                val_loss,
                epoch,
            )
        elif epoch - best_epoch >= config.patience:
            print(f"early stop: validation loss has not improved for {config.patience} epochs")
            break
    evaluated.load_state_dict(best_state)
    return Fitted(evaluated.eval(), history, best_epoch)
