"""What a training run is judged by: test metrics, a TF-IDF baseline on the same split, a chart."""

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: write PNGs, never open a window
import matplotlib.pyplot as plt
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from app.core.tokenizer import split_words
from training.data import Example

BASELINE_C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def classification_metrics(
    gold: list[str], predicted: list[str], labels: list[str]
) -> dict[str, Any]:
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(f1_score(gold, predicted, labels=labels, average="macro")), 4),
        "confusion_matrix": {
            "labels": labels,
            "rows_gold_columns_predicted": confusion_matrix(
                gold, predicted, labels=labels
            ).tolist(),
        },
    }


def tfidf_baseline(splits: dict[str, list[Example]], labels: list[str]) -> dict[str, Any]:
    """TF-IDF (word 1-2 grams, our tokenizer) + logistic regression, C chosen on validation."""

    def texts(name: str) -> list[str]:
        return [e.text for e in splits[name]]

    def gold(name: str) -> list[str]:
        return [e.label for e in splits[name]]

    vectorizer = TfidfVectorizer(
        tokenizer=split_words,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        sublinear_tf=True,
    )
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
    return {
        "model": "tfidf(1-2 grams)+logistic_regression",
        "C": best[1].C,
        "validation_accuracy": round(float(best[0]), 4),
        "test": classification_metrics(gold("test"), predicted, labels),
    }


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


def epoch_table(history: list[dict[str, float]]) -> str:
    lines = [
        "| epoch | learning rate | train loss | train accuracy | val loss | val accuracy |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['epoch']} | {r['lr']:.2g} | {r['train_loss']:.4f} | {r['train_accuracy']:.4f} | "
        f"{r['val_loss']:.4f} | {r['val_accuracy']:.4f} |"
        for r in history
    ]
    return "\n".join(lines)


def write_report(directory: Path, report: dict[str, Any]) -> None:
    (directory / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    rnn, base = report["test"], report["baseline"]["test"]
    md = [
        f"# Training report: {report['name']}",
        "",
        f"Data: `{report['data']['path']}` (sha256 `{report['data']['sha256']}`), split sizes "
        f"{report['data']['split_sizes']}. Preset `{report['preset']}`, seed {report['seed']}, "
        f"wall time {report['wall_time_s']} s, best epoch {report['best_epoch']}.",
        "",
        "| model | test accuracy | test macro-F1 |",
        "|---|---|---|",
        f"| RNN ({report['config']['rnn_type']}) | {rnn['accuracy']:.4f} | {rnn['macro_f1']:.4f} |",
        f"| {report['baseline']['model']} | {base['accuracy']:.4f} | {base['macro_f1']:.4f} |",
        "",
        epoch_table(report["history"]),
        "",
        f"Confusion matrix (rows gold, columns predicted, order {rnn['confusion_matrix']['labels']}): "
        f"{rnn['confusion_matrix']['rows_gold_columns_predicted']}",
        "",
        "![curves](training_curves.png)",
        "",
    ]
    (directory / "report.md").write_text("\n".join(md), encoding="utf-8")
