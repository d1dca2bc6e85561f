"""Train the RNN classifier and write the artifacts the service loads.

python -m training.train                              # bundled reviews, default preset
python -m training.train --preset seed                # the starting pipeline (embedding 50, RNN 64, length 10)
python -m training.train --data my.csv --out my_model # your own CSV/JSONL with text,label columns

Reads top to bottom: prepare (data, split, vocabulary, vectors) -> fit (epochs, early stopping)
-> ship (fold the training-time embedding, extend the vocabulary) -> evaluate (test, baseline)
-> write (artifacts and report).
"""

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.core.network import RNNClassifier, count_parameters
from app.core.tokenizer import Tokenizer
from training import distributed, ood
from training.adjust import adjust
from training.balance import class_counts, weight_summary
from training.branch import part_accuracies
from training.calibration import calibrate, labelled_logits
from training.checkpoint import add_checkpoint_flags, check_checkpoint_flags, checkpoints_for
from training.compare import paired_comparison
from training.config import (
    PRESETS,
    TrainConfig,
    add_config_flags,
    config_from_args,
    flat,
    with_data,
)
from training.corpus import Corpus, TextStore
from training.data import BUNDLED_DATA, Example, file_sha256
from training.embedding import MappedEmbedding, fold, use_mapped_embedding
from training.evaluation import predict_logits
from training.fit import Fitted, fit_model
from training.ingest import ingest
from training.memory import peak_rss_mb
from training.output import save
from training.report import classification_metrics, epoch_table, tfidf_baseline
from training.vectors import WordVectors, coverage, extension_words, glove_6b_50d, vectors_for

# The splits a trained model is judged on: the temperature and the adjustment are fitted on the
# first, reported on the second.
SPLITS = ("validation", "test")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=BUNDLED_DATA, help="CSV (with header), JSONL or Parquet file"
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--out", type=Path, default=Path("model_artifacts"), help="artifact directory"
    )
    target.add_argument(
        "--repository",
        help="write the next version of --name into this model repository (MODEL_REPOSITORY): "
        "a directory or s3://bucket/prefix",
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="with --repository: publish the version as the shadow of the model's live version "
        "(model.json loads both; the live one keeps answering) instead of as its live version",
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
    add_config_flags(parser)
    add_checkpoint_flags(parser)
    distributed.add_device_flag(parser)
    args = parser.parse_args(argv)
    check_checkpoint_flags(parser, args)
    if args.shadow and args.repository is None:
        parser.error("--shadow publishes into a model repository: give --repository")
    return args


@dataclass
class Prepared:
    splits: dict[str, TextStore]
    labels: list[str]
    tokenizer: Tokenizer  # the training vocabulary
    encoded: dict[str, Corpus]
    vectors: WordVectors | None
    vector_coverage: dict[str, dict[str, float]] | None


def encode(
    examples: Sequence[Example], tokenizer: Tokenizer, labels: list[str], max_length: int
) -> Corpus:
    label_ids = {label: i for i, label in enumerate(labels)}
    ids = [tokenizer.encode(e.text, max_length).ids for e in examples]
    return Corpus.of(ids, [label_ids[e.label] for e in examples])


def prepare(
    data: Path, text_column: str, label_column: str, limit: int | None, config: TrainConfig
) -> Prepared:
    """Examples, their split, the training vocabulary, word ids and (with --vectors) the vectors."""
    read = ingest(data, text_column, label_column, limit, config.min_freq, config.max_length)
    splits, labels, tokenizer = read.splits, read.labels, read.tokenizer
    if not all(splits.values()):
        sizes = {k: len(v) for k, v in splits.items()}
        raise SystemExit(f"too few examples to split {sizes}: need train, validation and test")
    vectors = glove_6b_50d() if config.vectors else None
    covered = None
    if vectors is not None:
        covered = coverage(tokenizer.tokens[2:], read.train_counts, vectors)
    print(
        f"{read.examples} examples { ({k: len(v) for k, v in splits.items()}) }, labels {labels}, "
        f"vocabulary {len(tokenizer)}" + (f", vector coverage {covered}" if covered else "")
    )
    return Prepared(splits, labels, tokenizer, read.encoded, vectors, covered)


def build_model(prepared: Prepared, config: TrainConfig) -> RNNClassifier:
    model = RNNClassifier(with_data(config.model, len(prepared.tokenizer), len(prepared.labels)))
    if prepared.vectors is None:
        return model
    table, found = vectors_for(prepared.tokenizer.tokens, prepared.vectors, config.clitic_fallback)
    return use_mapped_embedding(model, MappedEmbedding(table, found, config.model.embedding_dim))


def ship(
    model: RNNClassifier, prepared: Prepared, extra_vocab: int
) -> tuple[RNNClassifier, Tokenizer]:
    """The served model and vocabulary: the embedding folded into a plain table, and (with
    vectors) the `extra_vocab` most frequent vector words the training set lacks appended."""
    if prepared.vectors is None or not extra_vocab:
        return fold(model).eval(), prepared.tokenizer
    extra = extension_words(prepared.tokenizer.tokens, prepared.vectors, extra_vocab)
    table, _ = vectors_for(extra, prepared.vectors)
    return fold(model, table).eval(), Tokenizer([*prepared.tokenizer.tokens, *extra])


def predict(
    model: RNNClassifier, tokenizer: Tokenizer, texts: list[str], max_length: int
) -> torch.Tensor:
    """Class probabilities [N, C] exactly as the service computes them."""
    ids = [tokenizer.encode(text, max_length).ids for text in texts]
    return torch.softmax(predict_logits(model, ids), dim=-1)


def test_predictions(
    model: RNNClassifier, tokenizer: Tokenizer, prepared: Prepared, max_length: int
) -> list[str]:
    texts = [e.text for e in prepared.splits["test"]]
    predicted = predict(model, tokenizer, texts, max_length).argmax(dim=1)
    return [prepared.labels[i] for i in predicted.tolist()]


def evaluation_sets(data: Path, prepared: Prepared) -> dict[str, Sequence[Example]]:
    """What the temperature is fitted on (validation) and judged on: test, and for the bundled
    reviews the out-of-domain tweets when the sweep extra is installed."""
    sets: dict[str, Sequence[Example]] = {name: prepared.splits[name] for name in SPLITS}
    if data.resolve() == BUNDLED_DATA and prepared.labels == ood.OOD_LABELS and ood.available():
        sets["out_of_domain"] = ood.out_of_domain()
    return sets


def judge(
    model: RNNClassifier, tokenizer: Tokenizer, prepared: Prepared, data: Path, config: TrainConfig
) -> tuple[RNNClassifier, dict[str, Any]]:
    """The served model calibrated (and, for skewed labels, adjusted), and how it does on test
    beside the baseline."""
    sets, labels, length = evaluation_sets(data, prepared), prepared.labels, config.max_length
    model, calibration = calibrate(model, tokenizer, sets, labels, length)
    adjustment: dict[str, Any] = {"applied": False, "tau": 0.0}
    if config.logit_adjustment == "auto":
        counts = class_counts(prepared.encoded["train"].labels.tolist(), len(labels))
        measured = [labelled_logits(model, tokenizer, sets[n], labels, length) for n in SPLITS]
        model, adjustment = adjust(model, counts, *measured)
    predicted = test_predictions(model, tokenizer, prepared, length)
    gold = [e.label for e in prepared.splits["test"]]
    baseline, baseline_predicted = tfidf_baseline(prepared.splits, labels)
    return model, {
        "test": classification_metrics(gold, predicted, labels),
        "baseline": baseline,
        "comparison": paired_comparison(gold, predicted, baseline_predicted, labels),
        "calibration": calibration,
        "logit_adjustment": adjustment,
    }


def describe_run(
    args: argparse.Namespace,
    config: TrainConfig,
    prepared: Prepared,
    fitted: Fitted,
    served: RNNClassifier,
    tokenizer: Tokenizer,
    data_sha256: str,
) -> dict[str, Any]:
    """The report's account of the run: what was trained, on what, and how it went epoch by
    epoch."""
    return {
        "name": args.name or f"{args.data.stem}-{config.model.rnn_type}",
        "preset": args.preset,
        "hyperparameters": flat(config),
        "config": served.config.to_dict(),
        "parameters": count_parameters(served),
        "seed": args.seed,
        "threads": args.threads,
        "processes": distributed.processes(),
        "data": {
            "path": str(args.data.name),
            "sha256": data_sha256,
            "split_sizes": {k: len(v) for k, v in prepared.splits.items()},
            "limit": args.limit,
        },
        "vocabulary": {
            "training": len(prepared.tokenizer),
            "added_from_vectors": len(tokenizer) - len(prepared.tokenizer),
            "vector_coverage": prepared.vector_coverage,
        },
        "history": fitted.history,
        "best_epoch": fitted.best_epoch,
        "ngram_branch": part_accuracies(fitted.model, prepared.encoded["validation"]),
        "class_weight": weight_summary(
            class_counts(prepared.encoded["train"].labels.tolist(), len(prepared.labels)),
            prepared.labels,
            config.class_weight,
            fitted.class_weights,
        ),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    config = config_from_args(args)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = distributed.training_device(args.device)
    # Some CUDA kernels have no deterministic version: there, warn instead of refusing to train.
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    distributed.start(args.seed, device)
    data_sha256 = file_sha256(args.data)  # once: a large file takes a while to read

    prepared = prepare(args.data, args.text_column, args.label_column, args.limit, config)
    model = build_model(prepared, config).to(device)
    print(f"preset {args.preset}: {flat(config)}, {count_parameters(model)} parameters")
    fitted: Fitted = fit_model(
        model,
        lambda: build_model(prepared, config).to(device),
        prepared.encoded["train"],
        prepared.encoded["validation"],
        config,
        args.seed,
        checkpoints_for(args, {**flat(config), "seed": args.seed, "data": data_sha256}),
    )
    distributed.finish()
    if not distributed.is_main():
        return {}  # rank 0 evaluates and writes
    fitted.model.cpu()  # evaluated and saved as the service runs it
    served, tokenizer = ship(fitted.model, prepared, config.extra_vocab)
    served, judged = judge(served, tokenizer, prepared, args.data, config)
    test, baseline, calibration = judged["test"], judged["baseline"], judged["calibration"]

    report = {
        **describe_run(args, config, prepared, fitted, served, tokenizer, data_sha256),
        **judged,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }

    validation = [e.text for e in prepared.splits["validation"]]
    out = save(
        args.out,
        args.repository,
        served,
        tokenizer,
        prepared.labels,
        validation,
        config,
        report,
        as_shadow=args.shadow,
    )

    print(epoch_table(fitted.history))
    print(
        f"test accuracy {test['accuracy']:.4f} (macro-F1 {test['macro_f1']:.4f}) at best epoch "
        f"{fitted.best_epoch}; TF-IDF+LR baseline {baseline['test']['accuracy']:.4f}; "
        f"temperature {calibration['temperature']:.3f} (test ECE "
        f"{calibration['test']['ece_before']:.4f} -> {calibration['test']['ece_after']:.4f}); "
        f"{report['wall_time_s']} s; peak RSS {report['peak_rss_mb']} MB; artifacts in {out}/"
    )
    return report


if __name__ == "__main__":
    main()
