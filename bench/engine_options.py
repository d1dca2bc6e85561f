#!/usr/bin/env python3
"""ONNX Runtime's own knobs, tried on the bundled model: CPU time per text and what they change.

    python bench/engine_options.py          # ~1 min; writes bench/engine-options.md

Each variant runs the same 40 batches of 32 test-split texts on one pinned core, one intra-op
thread, variants alternating over rounds (median CPU time per text). Beside the time: the largest
change of any test-split probability against the shipped session, test accuracy, and how many
test texts change label. Shipped only what keeps every probability within 1e-5 and costs less.
"""

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.core.artifacts import load_artifacts
from app.engines.onnx_graph import build_graph
from app.engines.onnx_runtime import OnnxEngine
from training.data import BUNDLED_DATA, load_examples, split_examples

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7


def session(graph: bytes, configure: Callable[[ort.SessionOptions], None]) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    configure(options)
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def quantized(graph: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "model.onnx"), Path(tmp, "int8.onnx")
        source.write_bytes(graph)
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        return target.read_bytes()


def main() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    artifacts = load_artifacts(ROOT / "model_artifacts")
    test = split_examples(load_examples(BUNDLED_DATA))["test"]
    sequences = [artifacts.tokenizer.encode(e.text, artifacts.max_length).ids for e in test]
    truth = np.array([artifacts.labels.index(e.label) for e in test])
    rng = random.Random(0)
    batches = [rng.sample(sequences, 32) for _ in range(40)]
    graph = build_graph(artifacts.architecture, artifacts.weights).SerializeToString()
    variants = {
        "shipped: ORT_ENABLE_ALL (the default)": (graph, lambda o: None),
        "ORT_ENABLE_EXTENDED": (graph, lambda o: setattr(o, "graph_optimization_level",
                                ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)),
        "ORT_DISABLE_ALL": (graph, lambda o: setattr(o, "graph_optimization_level",
                            ort.GraphOptimizationLevel.ORT_DISABLE_ALL)),
        "allow_spinning 0": (graph, lambda o: o.add_session_config_entry(
                             "session.intra_op.allow_spinning", "0")),
        "int8 dynamic quantization (MatMul, Gather)": (quantized(graph), lambda o: None),
    }  # fmt: skip
    engines = {}
    for name, (model, configure) in variants.items():
        engine = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1)
        engine.session = session(model, configure)
        engines[name] = engine
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(ROUNDS):
        for name, engine in engines.items():
            started = time.thread_time()
            for batch in batches:
                engine.predict(batch)
            times[name].append((time.thread_time() - started) / (40 * 32) * 1e6)
    reference = engines["shipped: ORT_ENABLE_ALL (the default)"].predict(sequences)
    rows = []
    for name, engine in engines.items():
        got = engine.predict(sequences)
        rows.append(
            f"| {name} | {statistics.median(times[name]):.1f} | "
            f"{np.abs(got - reference).max():.1e} | {(got.argmax(1) == truth).mean():.4f} | "
            f"{int((got.argmax(1) != reference.argmax(1)).sum())} |"
        )
    report = [
        "# ONNX Runtime options on the bundled model",
        "",
        f"`python bench/engine_options.py`: {os.cpu_count()} CPUs, load average "
        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}, onnxruntime "
        f"{ort.__version__}, {len(test)} test-split texts, {ROUNDS} alternating rounds.",
        "",
        "| variant | CPU us per text (batch 32) | max change of a probability | test accuracy "
        "| labels changed |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    (ROOT / "bench" / "engine-options.md").write_text("\n".join(report), encoding="utf-8")
    print("\n".join(report))


if __name__ == "__main__":
    main()
