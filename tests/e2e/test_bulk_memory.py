"""Bulk scoring's memory does not grow with the file: the CLI's peak RSS on a file six times
larger stays within a few MB of the smaller one's, and under 400 MiB. Asserts no times."""

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from tests.support.artifacts import BUNDLED_MODEL, ROOT
from tests.support.bulk import review_texts

# Peak RSS of the command it runs (its only child), in KiB, printed last.
PEAK_RSS = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(done.returncode)"
)
# A wide column besides the text, so the file is large (1 KB a row) while scoring costs what it
# does per row: a reader that held the file would show it in MB.
PAD = "p" * 1000


def write_csv(path: Path, rows: int) -> Path:
    texts = pa.array(review_texts(20_000, seed=3))
    schema = pa.schema([("id", pa.int64()), ("pad", pa.string()), ("text", pa.string())])
    with pa_csv.CSVWriter(path, schema) as writer:
        for start in range(0, rows, 20_000):
            count = min(20_000, rows - start)
            ids = pa.array(range(start, start + count), pa.int64())
            pads = pa.array([PAD] * count)
            writer.write_batch(pa.record_batch([ids, pads, texts[:count]], schema=schema))
    return path


def peak_rss_mib(source: Path, output: Path) -> float:
    command = [sys.executable, "-m", "app.bulk", str(source), "-o", str(output), "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *command, "--model-dir", str(BUNDLED_MODEL)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1]) / 1024


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = peak_rss_mib(write_csv(tmp_path / "small.csv", 20_000), tmp_path / "small-out.csv")
    large_file = write_csv(tmp_path / "large.csv", 120_000)
    assert large_file.stat().st_size > 120e6
    large = peak_rss_mib(large_file, tmp_path / "large-out.parquet")
    assert large < 400, f"peak RSS {large:.0f} MiB on 120k rows"
    assert large < small + 32, f"peak RSS {small:.0f} MiB on 20k rows, {large:.0f} on 120k"
