"""Padded time steps per real token of the service's queue, in order vs by similar length.

Drives the real TextQueue (app/batching/queue.py) with the bench's review texts, tokenized by the
bundled vocabulary, at a steady number of requests in flight: each answered request is replaced
by a new one, as wrk does. "In order" is the queue with a window of one batch (the oldest texts,
as they came); "by length" is the service's window. No model runs: the engine pads every batch
to its longest text, so the ratio is what padding adds to the recurrent layer's work.

    python bench/padding.py            # ~5 s, prints a Markdown table
"""

import argparse
import asyncio
import csv
import itertools
import json
import random
from pathlib import Path

import numpy as np

from app.batching import queue
from app.core.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ((32, 4), (32, 8), (1, 256))  # (texts per request, requests in flight)


async def padded_per_real(
    sequences: list[list[int]], per_request: int, in_flight: int, window: int, batches: int
) -> float:
    queue.WINDOW_BATCHES = window
    texts = queue.TextQueue(max_batch_size=64, max_batch_tokens=8192, max_queue_texts=1 << 20)
    source = itertools.cycle(sequences)
    loop = asyncio.get_running_loop()

    def submit() -> None:
        job = queue.Job([next(source) for _ in range(per_request)], loop.create_future())
        texts.admit(job)

    for _ in range(in_flight):
        submit()
    real = padded = 0
    for _ in range(batches):
        batch, _ = texts.take()
        lengths = [len(job.sequences[index]) for job, index in batch]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
        for job, _ in batch:
            job.remaining -= 1
            if not job.remaining:
                job.future.set_result(np.empty(0))  # answered: the queue skips it from now on
                submit()
    return padded / real


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model_artifacts")
    parser.add_argument("--batches", type=int, default=2000)
    args = parser.parse_args()
    tokenizer = Tokenizer.load(args.model_dir / "vocab.json")
    with open(ROOT / "data" / "rotten_tomatoes.csv", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    random.Random(0).shuffle(texts)
    max_length = json.loads((args.model_dir / "config.json").read_text())["max_length"]
    sequences = [tokenizer.encode(text, max_length).ids for text in texts]
    service_window = queue.WINDOW_BATCHES
    print("| texts/request | in flight | in order | by length | work saved |")
    print("|---:|---:|---:|---:|---:|")
    for per_request, in_flight in SCENARIOS:
        before = await padded_per_real(sequences, per_request, in_flight, 1, args.batches)
        after = await padded_per_real(
            sequences, per_request, in_flight, service_window, args.batches
        )
        print(
            f"| {per_request} | {in_flight} | {before:.2f} | {after:.2f} | {1 - after / before:.0%} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
