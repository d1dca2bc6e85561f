"""What a training run is judged by: test metrics, a TF-IDF baseline on the same split, a chart."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: write PNGs, never open a window
import matplotlib.pyplot as plt
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.pipeline import Pipeline, make_pipeline

from app.core.tokenizer import split_words
from training.data import Example

BASELINE_C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Past this many training texts the baseline learns from an evenly spaced sample of them, with
# its 1-2 grams hashed into HASHED_FEATURES columns: a 1-2 gram vocabulary grows with every text
# (on 100,000 synthetic texts of 20 words it took 530 MB; millions of bigrams on a million), while
# the RNN's memory does not. Validation and test stay whole.
BASELINE_MAX_TRAIN = 100_000
HASHED_FEATURES = 2**20


def classification_metrics(
    gold: list[str], predicted: list[str], labels: list[str]
) -> dict[str, Any]:
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(
            float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)), 4
        ),
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "rows_gold_columns_predicted": confusion_matrix(
                gold, predicted, labels=labels
            ).tolist(),
        },
    }


def tfidf_baseline(
    splits: Mapping[str, Sequence[Example]], labels: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """TF-IDF (word 1-2 grams, our tokenizer) + logistic regression, C chosen on validation.
    Returns its report and its predicted label for each test text."""
    step = max(1, -(-len(splits["train"]) // BASELINE_MAX_TRAIN))
    used = {**splits, "train": [splits["train"][i] for i in range(0, len(splits["train"]), step)]}

    def texts(name: str) -> list[str]:
        return [e.text for e in used[name]]

    def gold(name: str) -> list[str]:
        return [e.label for e in used[name]]

    words = {"tokenizer": split_words, "lowercase": False, "token_pattern": None}
    vectorizer: TfidfVectorizer | Pipeline = TfidfVectorizer(
        **words, ngram_range=(1, 2), sublinear_tf=True
    )
    if step > 1:
        hashed = HashingVectorizer(
            **words, ngram_range=(1, 2), n_features=HASHED_FEATURES, alternate_sign=False, norm=None
        )
        vectorizer = make_pipeline(hashed, TfidfTransformer(sublinear_tf=True))
    train_x = vectorizer.fit_transform(texts("train"))
    best: tuple[float, LogisticRegression] | None = None
    for c in BASELINE_C_GRID:
        classifier = LogisticRegression(C=c, max_iter=2000).fit(train_x, gold("train"))
        val_acc = accuracy_score(
            gold("validation"), classifier.predict(vectorizer.transform(texts("validation")))
        )
        if best is None or val_acc > best[0]:
            best = (val_acc, classifier)
    assert best is not None
    predicted = best[1].predict(vectorizer.transform(texts("test"))).tolist()
    summary = {
        "model": "tfidf(1-2 grams)+logistic_regression"
        if step == 1
        else f"tfidf(1-2 grams hashed to {HASHED_FEATURES})+logistic_regression",
        "train_texts": len(used["train"]),
        "C": best[1].C,
        "validation_accuracy": round(float(best[0]), 4),
        "test": classification_metrics(gold("test"), predicted, labels),
    }
    return summary, predicted


def plot_curves(
    history: list[dict[str, float]], test_accuracy: float, baseline_accuracy: float, path: Path
) -> None:
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss_ax.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    loss_ax.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.plot(epochs, [r["train_accuracy"] for r in history], "o-", label="train")
    acc_ax.plot(epochs, [r["val_accuracy"] for r in history], "o-", label="validation")
    acc_ax.axhline(
        test_accuracy, color="tab:green", linestyle="--", label=f"RNN test {test_accuracy:.3f}"
    )
    acc_ax.axhline(
        baseline_accuracy,
        color="tab:gray",
        linestyle=":",
        label=f"TF-IDF+LR test {baseline_accuracy:.3f}",
    )
    acc_ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(calibration: dict[str, Any], path: Path) -> None:
    """Reliability diagram: accuracy against top probability, per bin, before and after the
    temperature, one panel per labelled set; a calibrated model lies on the diagonal."""
    sets = [name for name in ("test", "out_of_domain") if name in calibration]
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4.5), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        found = calibration[name]
        ax.plot([0, 1], [0, 1], color="tab:gray", linestyle=":", label="calibrated")
        for when, style in (("before", "o--"), ("after", "s-")):
            bins = [b for b in found[f"reliability_{when}"] if b["count"]]
            ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                style,
                label=f"{when} (ECE {found[f'ece_{when}']:.3f})",
            )
        title = "test" if name == "test" else "out of domain"
        ax.set(
            title=f"{title}: {found['texts']} texts, T = {calibration['temperature']:.3f}",
            xlabel="top probability (bin mean)",
            ylabel="accuracy in the bin",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def epoch_table(history: list[dict[str, float]]) -> str:
    lines = [
        "| epoch | learning rate | train loss | train accuracy | val loss | val accuracy "
        "| val macro-F1 | texts/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['epoch']} | {r['lr']:.2g} | {r['train_loss']:.4f} | {r['train_accuracy']:.4f} | "
        f"{r['val_loss']:.4f} | {r['val_accuracy']:.4f} | {r.get('val_macro_f1', float('nan')):.4f} | "
        f"{r.get('texts_per_s', float('nan')):.0f} |"
        for r in history
    ]
    return "\n".join(lines)


def calibration_section(calibration: dict[str, Any]) -> list[str]:
    names = {"validation": "validation", "test": "test", "out_of_domain": "out-of-domain tweets"}
    rows = [
        f"| {names[k]} | {v['texts']} | {v['ece_before']:.4f} | {v['ece_after']:.4f} | "
        f"{v['nll_before']:.4f} | {v['nll_after']:.4f} |"
        for k, v in calibration.items()
        if k in names
    ]
    return [
        "## Calibration",
        "",
        f"Temperature T = {calibration['temperature']:.4f}, fitted on the validation split and "
        "folded into the dense layer (weights / T, bias / T): the served probabilities are the "
        "calibrated ones, every prediction unchanged. ECE: expected calibration error, "
        f"{calibration['bins']} equal-width bins of the top probability; NLL: mean negative "
        "log-likelihood.",
        "",
        "| set | texts | ECE before | ECE after | NLL before | NLL after |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "![reliability](reliability.png)",
        "",
    ]


def comparison_section(comparison: dict[str, Any], baseline: str) -> list[str]:
    acc, f1 = comparison["accuracy"], comparison["macro_f1"]
    if acc["low"] > 0:
        verdict = "the interval lies above 0: on this test set the RNN is more accurate."
    elif acc["high"] < 0:
        verdict = "the interval lies below 0: on this test set the baseline is more accurate."
    else:
        verdict = "the interval contains 0: this test set cannot tell the two apart."
    return [
        "## RNN against the baseline on the same test texts",
        "",
        f"RNN minus {baseline}, paired bootstrap over the {comparison['texts']} test texts "
        f"({comparison['resamples']:,} resamples, {comparison['confidence']:.0%} percentile "
        f"interval): accuracy {100 * acc['difference']:+.2f} points "
        f"({100 * acc['low']:+.2f} to {100 * acc['high']:+.2f}), macro-F1 "
        f"{100 * f1['difference']:+.2f} ({100 * f1['low']:+.2f} to {100 * f1['high']:+.2f}). "
        f"Only the RNN right: {comparison['only_first_right']} texts, only the baseline: "
        f"{comparison['only_second_right']} (McNemar exact p = {comparison['mcnemar_p']:.3f}). "
        f"Accuracy: {verdict}",
        "",
    ]


def per_class_section(rnn: dict[str, Any], base: dict[str, Any]) -> list[str]:
    rows = [
        f"| {label} | {m['support']} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} "
        f"| {base['per_class'][label]['recall']:.4f} | {base['per_class'][label]['f1']:.4f} |"
        for label, m in rnn["per_class"].items()
    ]
    return [
        "## Per class (test)",
        "",
        "| label | texts | RNN precision | RNN recall | RNN F1 | baseline recall | baseline F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]


def adjustment_sentence(adjustment: dict[str, Any]) -> str:
    if not adjustment["applied"]:
        return "Labels not skewed: no logit adjustment."
    scores = ", ".join(f"{tau}: {f1:.4f}" for tau, f1 in adjustment["validation_macro_f1"].items())
    return (
        f"Labels skewed: logit adjustment tau = {adjustment['tau']} (validation macro-F1 by tau: "
        f"{scores}); after it, test ECE {adjustment['test_ece']:.4f}, NLL "
        f"{adjustment['test_nll']:.4f}."
    )


def branch_sentence(shares: dict[str, float] | None) -> str:
    if shares is None:
        return ""
    return (
        f" N-gram branch: validation accuracy of the RNN alone {shares['rnn_alone']:.4f}, of the "
        f"branch alone {shares['ngrams_alone']:.4f}, of both {shares['both']:.4f}."
    )


def write_report(directory: Path, report: dict[str, Any]) -> None:
    (directory / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rnn, base = report["test"], report["baseline"]["test"]
    weighting = report["class_weight"]
    md = [
        f"# Training report: {report['name']}",
        "",
        f"Data: `{report['data']['path']}` (sha256 `{report['data']['sha256']}`), split sizes "
        f"{report['data']['split_sizes']}. Preset `{report['preset']}`, seed {report['seed']}, "
        f"wall time {report['wall_time_s']} s, best epoch {report['best_epoch']}. Smallest class "
        f"{weighting['smallest_share']:.1%} of the training texts; class weights "
        f"({weighting['mode']}): {'on' if weighting['applied'] else 'off'}. "
        + adjustment_sentence(report["logit_adjustment"])
        + branch_sentence(report["ngram_branch"]),
        "",
        "| model | test accuracy | test macro-F1 |",
        "|---|---|---|",
        f"| RNN ({report['config']['rnn_type']}) | {rnn['accuracy']:.4f} | {rnn['macro_f1']:.4f} |",
        f"| {report['baseline']['model']} | {base['accuracy']:.4f} | {base['macro_f1']:.4f} |",
        "",
        *comparison_section(report["comparison"], report["baseline"]["model"]),
        *calibration_section(report["calibration"]),
        *per_class_section(rnn, base),
        epoch_table(report["history"]),
        "",
        f"Confusion matrix (rows gold, columns predicted, order {rnn['confusion_matrix']['labels']}): "
        f"{rnn['confusion_matrix']['rows_gold_columns_predicted']}",
        "",
        "![curves](training_curves.png)",
        "",
    ]
    (directory / "report.md").write_text("\n".join(md), encoding="utf-8")
