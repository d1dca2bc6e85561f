"""Train the RNN classifier and write the artifacts the service loads.

python -m training.train                              # bundled reviews, default preset
python -m training.train --preset seed                # the seed's config (embedding 50, RNN 64, length 10)
python -m training.train --data my.csv --out my_model # your own CSV/JSONL with text,label columns
"""

import argparse
import copy
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from app.artifacts import count_parameters, save_artifacts
from app.model import ModelConfig, RNNClassifier, collate
from app.tokenizer import PAD_ID, UNK_ID, Tokenizer
from training.data import BUNDLED_DATA, Example, load_examples, split_examples
from training.presets import PRESETS
from training.report import (
    classification_metrics,
    epoch_table,
    plot_curves,
    tfidf_baseline,
    write_report,
)

# Every ModelConfig field but the two the data decides is a hyperparameter of the preset.
ARCHITECTURE_KEYS = tuple(
    f.name for f in fields(ModelConfig) if f.name not in ("vocab_size", "num_classes")
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=BUNDLED_DATA, help="CSV (with header) or JSONL file"
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument(
        "--out", type=Path, default=Path("model_artifacts"), help="artifact directory"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument(
        "--name", help="model name reported by the service (default: from the data file)"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 = bit-reproducible)"
    )
    parser.add_argument("--limit", type=int, help="use only the first N examples (smoke tests)")
    for key in (
        "embedding_dim",
        "hidden_dim",
        "max_length",
        "epochs",
        "patience",
        "batch_size",
        "min_freq",
    ):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, help="override the preset")
    parser.add_argument("--lr", type=float, help="override the preset")
    parser.add_argument("--dropout", type=float, help="override the preset")
    parser.add_argument("--word-dropout", type=float, help="override the preset")
    parser.add_argument("--ema-decay", type=float, help="override the preset (0 = off)")
    parser.add_argument("--rnn-type", choices=["rnn", "gru", "lstm"], help="override the preset")
    parser.add_argument(
        "--pooling", choices=["last", "max", "max_mean"], help="override the preset"
    )
    return parser.parse_args(argv)


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    params = dict(PRESETS[args.preset])
    params.update({k: v for k, v in vars(args).items() if k in params and v is not None})
    return params


def encode_split(
    examples: list[Example], tokenizer: Tokenizer, label_ids: dict[str, int], max_length: int
) -> list[tuple[list[int], int]]:
    return [(tokenizer.encode(e.text, max_length).ids, label_ids[e.label]) for e in examples]


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


def run_epoch(
    model: RNNClassifier,
    data: list[tuple[list[int], int]],
    batch_size: int,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    word_dropout: float = 0.0,
    averaged: AveragedModel | None = None,
    desc: str = "",
) -> tuple[float, float]:
    """One pass over `data`; trains when an optimizer is given. Returns (mean loss, accuracy).

    Word dropout replaces random words by <unk> while training, so the model cannot lean on a
    few memorized words and learns what unknown words at serving time look like.
    """
    training = optimizer is not None
    model.train(training)
    count = len(data)
    order = torch.randperm(count, generator=generator).tolist() if training else list(range(count))
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct = 0.0, 0
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.set_grad_enabled(training):
        for batch in tqdm(batches, desc=desc, leave=False, disable=not training):
            ids, lengths = collate([data[i][0] for i in batch])
            targets = torch.tensor([data[i][1] for i in batch])
            if training and word_dropout:
                dropped = torch.rand(ids.shape, generator=generator) < word_dropout
                ids = ids.masked_fill(dropped & (ids != PAD_ID), UNK_ID)
            logits = model(ids, lengths)
            loss = loss_fn(logits, targets)
            if optimizer is not None:
                optimizer.zero_grad()
                (loss / len(batch)).backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(model)
            total_loss += loss.item()
            correct += int((logits.argmax(dim=1) == targets).sum())
    return total_loss / len(data), correct / len(data)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    params = hyperparameters(args)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    examples = load_examples(args.data, args.text_column, args.label_column)
    if args.limit:
        examples = examples[: args.limit]
    splits = split_examples(examples)
    if not splits["train"] or not splits["validation"] or not splits["test"]:
        sizes = {k: len(v) for k, v in splits.items()}
        raise SystemExit(f"too few examples to split {sizes}: need train, validation and test")
    labels = sorted({e.label for e in examples})
    label_ids = {label: i for i, label in enumerate(labels)}
    tokenizer = Tokenizer.build((e.text for e in splits["train"]), min_freq=params["min_freq"])
    encoded = {
        name: encode_split(split, tokenizer, label_ids, params["max_length"])
        for name, split in splits.items()
    }
    print(
        f"{len(examples)} examples { ({k: len(v) for k, v in splits.items()}) }, labels {labels}, "
        f"vocabulary {len(tokenizer)}"
    )

    config = ModelConfig(
        vocab_size=len(tokenizer),
        num_classes=len(labels),
        **{k: params[k] for k in ARCHITECTURE_KEYS},
    )
    model = RNNClassifier(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    # An exponential moving average of the weights is what gets validated and shipped: it sits
    # in a flatter region than the last step's weights and generalizes better.
    averaged = (
        AveragedModel(model, avg_fn=warmed_up_ema(params["ema_decay"]))
        if params["ema_decay"]
        else None
    )
    evaluated: RNNClassifier = averaged.module if averaged is not None else model
    generator = torch.Generator().manual_seed(args.seed)
    print(f"preset {args.preset}: {params}, {count_parameters(model)} parameters")

    history: list[dict[str, float]] = []
    best_state, best_loss, best_epoch = copy.deepcopy(evaluated.state_dict()), float("inf"), 0
    print("Epoch  Loss    Accuracy  Val loss  Val accuracy")
    for epoch in range(1, params["epochs"] + 1):
        train_loss, train_acc = run_epoch(
            model,
            encoded["train"],
            params["batch_size"],
            optimizer,
            generator,
            params["word_dropout"],
            averaged,
            desc=f"epoch {epoch}",
        )
        val_loss, val_acc = run_epoch(evaluated, encoded["validation"], 256)
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 4),
                "train_accuracy": round(train_acc, 4),
                "val_loss": round(val_loss, 4),
                "val_accuracy": round(val_acc, 4),
            }
        )
        print(f"{epoch:>5}  {train_loss:.4f}  {train_acc:.4f}    {val_loss:.4f}    {val_acc:.4f}")
        # The seed preset trains its fixed epochs; others keep the epoch with the best validation loss.
        if not params["patience"] or val_loss < best_loss:
            best_state, best_loss, best_epoch = (
                copy.deepcopy(evaluated.state_dict()),
                val_loss,
                epoch,
            )
        elif epoch - best_epoch >= params["patience"]:
            print(f"early stop: validation loss has not improved for {params['patience']} epochs")
            break
    model = evaluated
    model.load_state_dict(best_state)
    model.eval()

    with torch.inference_mode():
        ids, lengths = collate([ids for ids, _ in encoded["test"]])
        predicted = [labels[i] for i in model(ids, lengths).argmax(dim=1).tolist()]
    test = classification_metrics([e.label for e in splits["test"]], predicted, labels)
    baseline = tfidf_baseline(splits, labels)
    wall_time = round(time.perf_counter() - started, 1)

    name = args.name or f"{args.data.stem}-{config.rnn_type}"
    report = {
        "name": name,
        "preset": args.preset,
        "hyperparameters": params,
        "config": config.to_dict(),
        "parameters": count_parameters(model),
        "seed": args.seed,
        "threads": args.threads,
        "data": {
            "path": str(args.data.name),
            "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "limit": args.limit,
        },
        "history": history,
        "best_epoch": best_epoch,
        "test": test,
        "baseline": baseline,
        "wall_time_s": wall_time,
    }
    headline = {
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "baseline_test_accuracy": baseline["test"]["accuracy"],
        "best_epoch": best_epoch,
    }
    save_artifacts(
        args.out,
        model,
        tokenizer,
        labels,
        params["max_length"],
        name=name,
        version=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        extra={
            "metrics": headline,
            "training": {
                "preset": args.preset,
                "seed": args.seed,
                "data_sha256": report["data"]["sha256"],
            },
        },
    )
    plot_curves(
        history, test["accuracy"], baseline["test"]["accuracy"], args.out / "training_curves.png"
    )
    write_report(args.out, report)

    print(epoch_table(history))
    print(
        f"test accuracy {test['accuracy']:.4f} (macro-F1 {test['macro_f1']:.4f}) at best epoch {best_epoch}; "
        f"TF-IDF+LR baseline {baseline['test']['accuracy']:.4f}; {wall_time} s; artifacts in {args.out}/"
    )
    return report


if __name__ == "__main__":
    main()
