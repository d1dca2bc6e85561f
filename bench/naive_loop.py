"""The loop users write themselves: each row of the file through the tokenizer and the engine on
its own, one text per forward pass (no batching), as bench/bulk.py's baseline.

    python bench/naive_loop.py INPUT.parquet OUTPUT.parquet [--rows N]

Prints one JSON line: rows and seconds of the loop (the model loaded before the clock starts).
"""

import argparse
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from app.core.artifacts import load_artifacts
from app.engines.onnx_runtime import OnnxEngine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=0, help="only the first N rows")
    parser.add_argument("--model-dir", type=Path, default=Path("model_artifacts"))
    args = parser.parse_args()
    artifacts = load_artifacts(args.model_dir)
    engine = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1)
    table = pq.read_table(args.input)
    if args.rows:
        table = table.slice(0, args.rows)
    started = time.perf_counter()
    labels, scores = [], []
    for text in table.column("text").to_pylist():
        ids = artifacts.tokenizer.encode(text, artifacts.max_length).ids
        row = engine.predict([ids])[0]
        labels.append(artifacts.labels[int(row.argmax())])
        scores.append(float(row.max()))
    out = table.append_column("label", pa.array(labels)).append_column("score", pa.array(scores))
    pq.write_table(out, args.output)
    print(json.dumps({"rows": table.num_rows, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
