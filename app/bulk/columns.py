"""The columns a bulk run adds after the input's own: label, score, the probability of each label,
and error (why the service would refuse that row's text; empty otherwise)."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from app.bulk.scoring import Scores


@dataclass(frozen=True)
class ResultColumns:
    labels: list[str]
    prefix: str = ""  # for inputs that already have a column of one of these names

    @property
    def label(self) -> str:
        return self.prefix + "label"

    @property
    def score(self) -> str:
        return self.prefix + "score"

    @property
    def error(self) -> str:
        return self.prefix + "error"

    def probability(self, label: str) -> str:
        return f"{self.prefix}probability_{label}"

    def names(self) -> list[str]:
        return [self.label, self.score, *map(self.probability, self.labels), self.error]

    def fields(self) -> list[pa.Field]:
        # float32: the engine's own precision, the values /classify sends as JSON numbers.
        scores = [pa.field(name, pa.float32()) for name in self.names()[1:-1]]
        return [pa.field(self.label, pa.string()), *scores, pa.field(self.error, pa.string())]

    def clashes(self, input_names: list[str]) -> list[str]:
        return [name for name in self.names() if name in input_names]

    def schema(self, input_schema: pa.Schema) -> pa.Schema:
        return pa.schema([*input_schema, *self.fields()], metadata=input_schema.metadata)

    def arrays(self, scores: Scores) -> list[pa.Array]:
        """The added columns of one chunk; a refused row's label and scores are null."""
        refused = scores.refused
        rows = np.arange(len(scores.best))
        best = np.where(refused, 0, scores.best)
        names = np.array(self.labels, dtype=object)[best]
        columns = [
            pa.array(names, pa.string(), mask=refused),
            pa.array(scores.probabilities[rows, best], pa.float32(), mask=refused),
        ]
        columns += [
            pa.array(scores.probabilities[:, k], pa.float32(), mask=refused)
            for k in range(len(self.labels))
        ]
        columns.append(pa.array(scores.errors, pa.string()))
        return columns

    def append(self, batch: pa.RecordBatch, scores: Scores, schema: pa.Schema) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([*batch.columns, *self.arrays(scores)], schema=schema)
