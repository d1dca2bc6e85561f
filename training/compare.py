"""Is the RNN really better than the baseline on this test set? A paired comparison on the same
test texts: a bootstrap interval of the difference and McNemar's exact test.

Both models answer the same texts, so what varies between them is only the texts where one is
right and the other wrong; resampling texts (not models) and keeping each text's pair of answers
together gives the interval of the difference that this test set supports. An interval that
contains 0 means the test set cannot tell the two apart.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest

RESAMPLES = 10_000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0
# Resamples drawn at a time: at most CHUNK, and fewer for many texts, so the index matrix stays
# within CHUNK_ELEMENTS (32 MB) whatever the test set's size (2,000 at once on 100,000 texts took
# 6 GB).
CHUNK = 2_000
CHUNK_ELEMENTS = 4_000_000


def _macro_f1(gold: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], classes: int) -> Any:
    """Macro-F1 of each row: gold and predicted are [R, N] label ids."""
    f1 = []
    for c in range(classes):
        true_positive = ((gold == c) & (predicted == c)).sum(axis=1)
        predicted_c, gold_c = (predicted == c).sum(axis=1), (gold == c).sum(axis=1)
        # F1 = 2 TP / (predicted + gold); 0 for a class neither has (as scikit-learn's default).
        f1.append(
            np.where(
                predicted_c + gold_c > 0,
                2 * true_positive / np.maximum(predicted_c + gold_c, 1),
                0.0,
            )
        )
    return np.mean(f1, axis=0)


def paired_comparison(
    gold: list[str], first: list[str], second: list[str], labels: list[str]
) -> dict[str, Any]:
    """`first` minus `second` on accuracy and macro-F1: the observed difference, its bootstrap
    percentile interval, and McNemar's exact p-value on the texts where exactly one is right."""
    ids = {label: i for i, label in enumerate(labels)}
    g, a, b = (np.array([ids[x] for x in column]) for column in (gold, first, second))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    accuracy, macro_f1 = [], []
    chunk = max(1, min(CHUNK, CHUNK_ELEMENTS // len(g)))
    for start in range(0, RESAMPLES, chunk):
        rows = rng.integers(0, len(g), size=(min(chunk, RESAMPLES - start), len(g)))
        accuracy.append((a[rows] == g[rows]).mean(axis=1) - (b[rows] == g[rows]).mean(axis=1))
        macro_f1.append(
            _macro_f1(g[rows], a[rows], len(labels)) - _macro_f1(g[rows], b[rows], len(labels))
        )
    tail = (1 - CONFIDENCE) / 2 * 100
    only_first = int(((a == g) & (b != g)).sum())
    only_second = int(((a != g) & (b == g)).sum())
    discordant = only_first + only_second
    p_value = binomtest(only_first, discordant, 0.5).pvalue if discordant else 1.0

    def summary(observed: float, draws: list[Any]) -> dict[str, float]:
        low, high = np.percentile(np.concatenate(draws), [tail, 100 - tail])
        return {
            "difference": round(observed, 4),
            "low": round(float(low), 4),
            "high": round(float(high), 4),
        }

    return {
        "texts": len(g),
        "resamples": RESAMPLES,
        "confidence": CONFIDENCE,
        "accuracy": summary(float((a == g).mean() - (b == g).mean()), accuracy),
        "macro_f1": summary(
            float(
                _macro_f1(g[None], a[None], len(labels))[0]
                - _macro_f1(g[None], b[None], len(labels))[0]
            ),
            macro_f1,
        ),
        "only_first_right": only_first,
        "only_second_right": only_second,
        "mcnemar_p": round(float(p_value), 4),
    }
