"""py-spy profiling of our service under load, and a summary of its stacks, for bench/run.py."""

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from loadgen import run_wrk, summarize
from servers import ROOT, Server, children, log, shown_path, stop_process_group


def ensure_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if Path(found).exists():
        return found
    log("py-spy not found: pip install py-spy")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(Path(sys.executable).parent / "py-spy")


def profile_ours(
    wrk: str, ours: Server, bodies: Path, connections: int, seconds: int, cpu: int, out: Path
) -> dict[str, Any]:
    """py-spy (on the client core) while wrk drives our service: an SVG and a top-function table."""
    py_spy = ensure_py_spy()
    assert ours.proc is not None
    profiles: dict[str, Any] = {}
    # with_name, not with_suffix: "profile.smoke" must stay "profile.smoke.svg", not "profile.svg"
    stacks, svg = out.with_name(out.name + ".txt"), out.with_name(out.name + ".svg")
    for fmt, path in (("raw", stacks), ("flamegraph", svg)):
        command = [
            "taskset", "-c", str(cpu), py_spy, "record", "--pid", str(ours.proc.pid),
            "--duration", str(seconds), "--rate", "250", "--threads", "--nonblocking",
            "--format", fmt, "--output", str(path),
        ]  # fmt: skip
        spy = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        children.append(spy)
        try:
            time.sleep(0.5)  # attached before the load starts
            profiles[fmt] = summarize(run_wrk(wrk, ours.port, bodies, connections, seconds, cpu), 1)
            spy_output, _ = spy.communicate(timeout=seconds + 60)
        finally:
            stop_process_group(spy, grace=2)
            children.remove(spy)
        if spy.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"py-spy failed ({spy.returncode}): {spy_output.decode(errors='replace')}"
            )
    profiles["top"] = top_functions(stacks)
    profiles["svg"], profiles["stacks"] = shown_path(svg), shown_path(stacks)
    return profiles


# Where a sample's time goes: the first rule (from the innermost frame outwards) that matches.
_CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("model forward pass (engine predict: ONNX Runtime or torch)",
     ("Engine.predict", "app/engines/", "onnxruntime/", "torch/", "app/core/network.py",
      "app/core/padding.py", "numpy/")),
    ("queue and runner: submit / wake-ups / settling futures",
     ("app/batching/queue.py", "app/batching/runner.py", "_settle", "call_soon_threadsafe")),
    ("sync dependency run in the threadpool (AnyIO)",
     ("run_in_threadpool", "anyio/", "starlette/concurrency.py")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("tokenizer", ("app/core/tokenizer.py", "unicodedata")),
    ("request id (uuid4)", ("uuid.py",)),
    ("request parsing and validation (pydantic)",
     ("pydantic", "request_body_to_args", "_validate", "json/")),
    ("our handler and middleware (app/)", ("app/",)),
    ("FastAPI / Starlette routing and middleware", ("fastapi/", "starlette/")),
    ("uvicorn HTTP protocol", ("uvicorn/protocols", "httptools")),
    ("asyncio event loop and sockets", ("asyncio/", "uvloop", "uvicorn/")),
]  # fmt: skip


def _category(thread: str, frames: list[str]) -> str:
    if "AnyIO worker" in thread:
        return "sync dependency run in the threadpool (AnyIO)"
    for frame in reversed(frames):
        for category, markers in _CATEGORIES:
            if any(marker in frame for marker in markers):
                return category
    return "other"


def top_functions(collapsed: Path, limit: int = 15) -> dict[str, Any]:
    """Sample shares per thread, per part of the request path, and per function (self time),
    from py-spy's raw (collapsed stacks) output."""
    self_counts: Counter[str] = Counter()
    category_counts: Counter[str] = Counter()
    thread_counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread ")), "?")
        thread = re.sub(r"^thread \(\w+\):?\s*", "", thread) or "?"
        frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        if not frames:
            continue
        total += count
        thread_counts[thread] += count
        category_counts[_category(thread, frames)] += count
        self_counts[_frame_name(frames[-1])] += count

    def share(counter: Counter[str], n: int | None = limit) -> list[tuple[str, float]]:
        return [(name, c / total) for name, c in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "threads": share(thread_counts, None),
        "categories": share(category_counts, None),
        "self": share(self_counts),
    }


def _frame_name(frame: str) -> str:
    """'predict (app/batching/runner.py:34)' -> 'predict (app/batching/runner.py)': one entry per function."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    path = path or where
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"
