"""A model repository in object storage, measured against a real S3-compatible server
(moto_server, in memory, on this machine) and the real service (`python -m app`):

- publish to answer: from the moment config.json (the commit point) is written to the moment
  /classify answers with the new version, at POLL_INTERVAL_S=5 (target: <= 2 intervals);
- listings at idle: the store requests a polling server makes in a minute with nothing changing,
  counted twice: the server's own rnn_classifier_repository_requests_total and the store's
  request log (target: one listing per interval);
- start-up with a cold cache (every file downloaded) and a warm one (only listed), the bundled
  model, each the time from process start to /health/ready answering 200.

    python bench/object_store.py             -> bench/object-store.md
    python bench/object_store.py --smoke     (a 1 s interval and a 10 s idle window; asserts nothing)
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.repository.publish import publish_version  # noqa: E402

BUCKET, REPOSITORY = "models", "s3://models/repository"
MODEL = ROOT / "model_artifacts"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
}
PUBLISHES = 3
STARTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class Store:
    """moto_server, its request log read as it comes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        moto = str(Path(sys.executable).with_name("moto_server"))
        self.process = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_http(self.url + "/moto-api/")
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/{BUCKET}", method="PUT")).close()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def listings(self) -> int:
        return sum(1 for line in list(self.log) if "list-type=2" in line)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def publish(model_name: str) -> tuple[str, float]:
    """The next version of the bundled model's files; (version, when config.json was written)."""

    def write(folder: Path) -> None:
        for file in MODEL.iterdir():
            if file.is_file():
                shutil.copy(file, folder / file.name)

    url = publish_version(REPOSITORY, model_name, write)  # returns once config.json is written
    return url.rsplit("/", 1)[1], time.monotonic()


class Service:
    def __init__(self, store: Store, cache: Path, interval: float) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **CREDENTIALS,
            "MODEL_REPOSITORY": REPOSITORY,
            "S3_ENDPOINT_URL": store.url,
            "MODEL_CONTROL": "poll",
            "POLL_INTERVAL_S": str(interval),
            "MODEL_CACHE_DIR": str(cache),
            "PORT": str(self.port),
            "GRPC_PORT": "0",
            "THREADS": "1",
            "LOG_LEVEL": "warning",
        }
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_http(self.base + "/health/ready", timeout=120)
        self.start_s = time.monotonic() - started

    def version(self) -> str:
        request = urllib.request.Request(
            self.base + "/classify", json.dumps({"texts": ["funny"]}).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.loads(response.read())["model"]["version"])

    def listings(self) -> float:
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(
                    'rnn_classifier_repository_requests_total{operation="list",outcome="ok"}'
                ):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    gpu = "no GPU" if shutil.which("nvidia-smi") is None else "a GPU (not used)"
    load = os.getloadavg()
    return f"{os.cpu_count()} cores ({model}), {gpu}, load average {load[0]:.1f} at the start"


def run(interval: float, idle_s: float) -> dict[str, Any]:
    os.environ.update(CREDENTIALS)
    store = Store()
    name = json.loads((MODEL / "config.json").read_text())["name"]
    results: dict[str, Any] = {"interval_s": interval, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-object-store-") as scratch:
        try:
            os.environ["S3_ENDPOINT_URL"] = store.url
            publish(name)
            cold, warm = [], []
            for i in range(STARTS):
                service = Service(store, Path(scratch, f"cache-{i}"), interval)  # cold
                cold.append(service.start_s)
                service.stop()
                service = Service(store, Path(scratch, f"cache-{i}"), interval)  # warm
                warm.append(service.start_s)
                service.stop()
            results["start_cold_s"], results["start_warm_s"] = cold, warm
            service = Service(store, Path(scratch, "cache-follow"), interval)
            try:
                delays = []
                for _ in range(PUBLISHES):
                    version, written = publish(name)
                    while service.version() != version:
                        time.sleep(0.01)
                    delays.append(time.monotonic() - written)
                    time.sleep(
                        interval * 0.37
                    )  # the next publish lands elsewhere in a poll's cycle
                results["publish_to_answer_s"] = delays
                before, logged = service.listings(), store.listings()
                time.sleep(idle_s)
                per_minute = 60 / idle_s
                results["idle_listings_per_min_metric"] = (service.listings() - before) * per_minute
                results["idle_listings_per_min_store_log"] = (
                    store.listings() - logged
                ) * per_minute
                results["idle_expected_per_min"] = 60 / interval
            finally:
                service.stop()
        finally:
            store.stop()
    return results


def report(r: dict[str, Any]) -> str:
    interval = r["interval_s"]
    delays = r["publish_to_answer_s"]
    return f"""# Model repository in object storage

`python bench/object_store.py` on {r["machine"]}. The store: moto_server (in memory, on the same
machine, so downloads cost what HTTP on loopback costs); the service: `python -m app`,
`MODEL_REPOSITORY={REPOSITORY}`, `MODEL_CONTROL=poll`, `POLL_INTERVAL_S={interval:g}`, the
bundled model (2.3 MB of files).

| figure | measured | target |
|---|---|---|
| config.json written -> the new version answering, {len(delays)} publishes | {", ".join(f"{d:.2f}" for d in delays)} s (max {max(delays):.2f} s = {max(delays) / interval:.2f} intervals) | <= 2 intervals ({2 * interval:g} s) |
| listings per minute at idle, one model (the server's metric / the store's log) | {r["idle_listings_per_min_metric"]:.1f} / {r["idle_listings_per_min_store_log"]:.1f} | one per interval: {r["idle_expected_per_min"]:.1f} |
| start-up, cold cache (median of {len(r["start_cold_s"])}) | {statistics.median(r["start_cold_s"]):.2f} s ({", ".join(f"{s:.2f}" for s in r["start_cold_s"])}) | |
| start-up, warm cache (median of {len(r["start_warm_s"])}) | {statistics.median(r["start_warm_s"]):.2f} s ({", ".join(f"{s:.2f}" for s in r["start_warm_s"])}) | |

A new version answers within one interval plus the download and load (verification, known
answers, warm-up); idle polling is one listing request per interval for the whole repository
(one per 1,000 objects), no download. A warm start lists the bucket and reuses every cached file
whose tag and checksum match; the cold start's extra is downloading four files.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short intervals; writes nothing")
    args = parser.parse_args()
    results = run(1.0, 10.0) if args.smoke else run(5.0, 60.0)
    print(json.dumps(results, indent=2))
    if not args.smoke:
        (ROOT / "bench" / "object-store.md").write_text(report(results), encoding="utf-8")
        (ROOT / "bench" / "object-store.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
