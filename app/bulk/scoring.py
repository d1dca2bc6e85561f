"""The batch-scoring core every bulk path runs (the CLI, its worker processes, the Spark UDF).

Texts in; per text the label, the score and every label's probability out, or why the service
would refuse it. It reads the texts with the service's rules and tokenizer (app/lifecycle/validation.py)
and runs them through the service's ONNX Runtime engine, so a text gets the probabilities
/classify gives it. What differs from the request path is only the batching: a bulk job has all
its texts at hand, so it sorts a chunk of them by length and runs batches of similar length,
where padding costs least, then puts every answer back in its row.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from app.core.artifacts import Artifacts, load_artifacts
from app.lifecycle.validation import TextRules
from app.settings import get_settings

# Texts per forward pass. Sorted by length, a batch wastes little on padding, so larger batches
# keep paying off past the service's MAX_BATCH_SIZE of 64 (bench/bulk-results.md).
DEFAULT_BATCH_SIZE = 256
NO_TEXT = "no text (null)"


@dataclass(frozen=True)
class Scores:
    """One chunk's answers, row for row: refused rows have NaN probabilities, best -1, an error."""

    probabilities: np.ndarray  # [rows, labels] float32
    best: np.ndarray  # [rows] int64: index of the most probable label, -1 where refused
    errors: list[str | None]

    @property
    def refused(self) -> np.ndarray:
        return self.best < 0


class Scorer:
    """The loaded model and its engine, for one process; one intra-op thread unless told."""

    def __init__(
        self, artifacts: Artifacts, rules: TextRules, threads: int = 1, batch_size: int = 0
    ) -> None:
        self.labels = list(artifacts.labels)
        self.rules = rules
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        # Imported here: a parent process of --workers N only unpickles Scores, and ONNX Runtime
        # with onnx is ~60 MB it then does not load.
        from app.engines.onnx_runtime import OnnxEngine

        # Set explicitly: ONNX Runtime sizes its pool by the machine's cores, not by
        # OMP_NUM_THREADS, and N worker processes each with N threads would oversubscribe.
        self.engine = OnnxEngine(artifacts.architecture, artifacts.weights, threads)

    @classmethod
    def load(
        cls,
        model_dir: Path,
        threads: int = 1,
        batch_size: int = 0,
        max_text_chars: int | None = None,
        truncation: Literal["truncate", "reject"] | None = None,
    ) -> "Scorer":
        """A model directory (verified as the service verifies it; ArtifactError names the file
        at fault), read with the service's MAX_TEXT_CHARS and TRUNCATION unless given."""
        artifacts = load_artifacts(model_dir)
        settings = get_settings()
        rules = TextRules(
            artifacts.tokenizer,
            artifacts.max_length,
            max_text_chars or settings.max_text_chars,
            truncation or settings.truncation,
        )
        return cls(artifacts, rules, threads, batch_size)

    def score(self, texts: Sequence[object]) -> Scores:
        """Answers for `texts`, in their order. A value that is not a text (a null cell) is a
        refused row, as is any text the service would refuse."""
        errors: list[str | None] = [None] * len(texts)
        sequences: list[list[int]] = []
        rows: list[int] = []
        encode = self.rules.encode
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                errors[i] = NO_TEXT if text is None else f"not a text ({type(text).__name__})"
                continue
            item = encode(text)
            if isinstance(item, str):
                errors[i] = item
                continue
            sequences.append(item.ids)
            rows.append(i)
        probabilities = np.full((len(texts), len(self.labels)), np.nan, np.float32)
        best = np.full(len(texts), -1, np.int64)
        if rows:
            scored = self.predict(sequences)
            probabilities[rows] = scored
            # argmax as the classify flow takes it: the first label wins a tie.
            best[rows] = scored.argmax(axis=1)
        return Scores(probabilities, best, errors)

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), labels], in input order, run in batches of similar
        length (longest first, so the largest padded batch comes first)."""
        lengths = np.fromiter(map(len, sequences), np.int64, count=len(sequences))
        order = np.argsort(-lengths, kind="stable")
        probabilities = np.empty((len(sequences), len(self.labels)), np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            probabilities[rows] = self.engine.predict([sequences[i] for i in rows])
        return probabilities
