"""ONNX Runtime CPU engine: the loaded weights run as one native ONNX graph (app/engines/onnx_graph.py).

Why: on CPU, torch's RNN over packed sequences pays a per-time-step overhead that costs more than
a small model's arithmetic. ONNX Runtime runs the whole sequence inside one RNN/GRU/LSTM kernel,
and its `sequence_lens` input keeps padding unread, so a text gets the same answer alone as inside
a batch of longer texts (as torch's packing does).
"""

import threading
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from app.core.architecture import ModelConfig
from app.core.artifacts import Weights
from app.core.ngrams import pair_buckets, unknown_pairs
from app.core.padding import pad
from app.core.tokenizer import UNK_ID
from app.engines.base import Trace
from app.engines.onnx_graph import NGRAM_TRACE_OUTPUT, TRACE_OUTPUTS, build_graph

# A batch runs as groups of texts of similar length, because ONNX Runtime's recurrent op steps every
# row up to the longest one (masked, but computed). A group ends where a text is more than a
# quarter shorter than the group's longest; groups under MIN_GROUP_ROWS rows are kept growing
# since each run has a fixed cost. Measured on the bundled model: 1.15-1.4x less time per text at
# batch 8-64 of mixed-length reviews than one padded run.
SHORTER_STARTS_GROUP = 0.75
MIN_GROUP_ROWS = 4


def real_steps(lengths: np.ndarray, steps: int) -> np.ndarray:
    """The `real` input: [T, 1, B, 1], True where t < length of text b."""
    return (np.arange(steps)[:, None] < lengths[None, :])[:, None, :, None]


def length_groups(lengths: np.ndarray) -> list[np.ndarray]:
    """Row indices grouped by similar length, longest first (see SHORTER_STARTS_GROUP)."""
    order = np.argsort(-lengths, kind="stable")
    groups, start = [], 0
    for k in range(MIN_GROUP_ROWS, len(order)):
        longest = lengths[order[start]]
        if k - start >= MIN_GROUP_ROWS and lengths[order[k]] < SHORTER_STARTS_GROUP * longest:
            groups.append(order[start:k])
            start = k
    groups.append(order[start:])
    return groups


def ngram_feeds(ids: np.ndarray, lengths: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """The n-gram branch's inputs (see onnx_graph.ngram_table), time-major: each text's words,
    then its pair buckets (after the words' rows), pairs with <unk> pointed at <unk>'s row,
    padding at the zero row; and
    1 / (2L - 1). Written for few numpy calls: at batch 1 they are a measurable share of a run."""
    batch, steps = ids.shape
    rows = np.empty((2 * steps - 1, batch), np.int64)
    rows[:steps] = ids.T
    np.add(pair_buckets(ids, config.ngram_buckets).T, config.vocab_size, out=rows[steps:])
    rows[steps:][unknown_pairs(ids).T] = UNK_ID  # the bias alone (onnx_graph.ngram_table)
    if batch == 1:  # a text alone has no padding
        inverse = np.array([[1.0 / (2 * steps - 1)]], np.float32)
    else:
        positions = np.concatenate([np.arange(steps), np.arange(1, steps)])
        rows[positions[:, None] >= lengths[None, :]] = config.vocab_size + config.ngram_buckets
        inverse = (1.0 / (2 * lengths - 1)).astype(np.float32).reshape(-1, 1)
    return {"ngram_rows": rows, "inverse_ngrams": inverse}


def _session(graph: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # One graph run at a time per worker, each op parallel inside: no inter-op pool to feed.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxEngine:
    """Class probabilities from ONNX Runtime on CPU, for the same weights as the torch network."""

    name = "onnx"
    device = "cpu"

    def __init__(self, config: ModelConfig, weights: Weights, threads: int) -> None:
        self._config, self._weights, self._threads = config, weights, threads
        self.on_batch: Callable[[int, int], None] | None = None
        self.session = _session(build_graph(config, weights).SerializeToString(), threads)
        # The tracing graph (for /explain) is built on first use: most servers never explain.
        self._tracer: ort.InferenceSession | None = None
        self._tracer_lock = threading.Lock()

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        """Probabilities [len(sequences), classes], float32, in input order."""
        if len(sequences) == 1:  # a text alone: nothing to group or pad
            if self.on_batch is not None:
                self.on_batch(len(sequences[0]), len(sequences[0]))
            return self._run(self.session, sequences, ["probabilities"])[0]
        lengths = np.fromiter(map(len, sequences), np.int64, count=len(sequences))
        groups = length_groups(lengths)
        if self.on_batch is not None:
            padded = sum(int(lengths[rows].max()) * len(rows) for rows in groups)
            self.on_batch(int(lengths.sum()), padded)
        if len(groups) == 1:
            return self._run(self.session, sequences, ["probabilities"])[0]
        probabilities = np.empty((len(sequences), self._config.num_classes), np.float32)
        for rows in groups:
            group = [sequences[i] for i in rows]
            probabilities[rows] = self._run(self.session, group, ["probabilities"])[0]
        return probabilities

    def trace(self, sequences: list[list[int]]) -> Trace:
        branch = [NGRAM_TRACE_OUTPUT] if self._config.ngram_buckets else []
        probabilities, embedded, steps, logits, *ngram_logits = self._run(
            self._tracing_session(), sequences, ["probabilities", *TRACE_OUTPUTS, *branch]
        )
        # Time-major [T, B, ...] -> [B, T, ...]; directions side by side, as torch has them.
        t, d, b, h = steps.shape
        return Trace(
            embedding=embedded.transpose(1, 0, 2),
            rnn_steps=steps.transpose(2, 0, 1, 3).reshape(b, t, d * h),
            logits=logits,
            probabilities=probabilities,
            # The graph's branch output carries the dense bias (see onnx_graph.ngram_table).
            ngram_logits=ngram_logits[0] - self._weights["dense.bias"] if ngram_logits else None,
        )

    def _tracing_session(self) -> ort.InferenceSession:
        with self._tracer_lock:
            if self._tracer is None:
                graph = build_graph(self._config, self._weights, trace=True)
                self._tracer = _session(graph.SerializeToString(), self._threads)
            return self._tracer

    def _run(
        self, session: ort.InferenceSession, sequences: list[list[int]], outputs: list[str]
    ) -> list[np.ndarray]:
        ids, lengths = pad(sequences)
        feeds = {"ids": np.ascontiguousarray(ids.T), "lengths": lengths.astype(np.int32)}
        if self._config.pooling != "last":
            feeds["real"] = real_steps(lengths, ids.shape[1])
        if self._config.pooling == "max_mean":
            feeds["inverse_lengths"] = (1.0 / lengths).astype(np.float32)[None, :, None]
        if self._config.ngram_buckets:
            feeds.update(ngram_feeds(ids, lengths, self._config))
        return [np.asarray(value, np.float32) for value in session.run(outputs, feeds)]
