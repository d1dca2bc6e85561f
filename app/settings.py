"""Service configuration, read from environment variables (documented in README.md)."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from app.logs import LogFormat


def cpu_budget() -> int:
    """CPUs this process may run on (affinity/cgroup-pinned), not the host's core count."""
    return len(os.sched_getaffinity(0))


class Settings(BaseSettings):
    model_dir: Path = Field(
        Path("model_artifacts"), description="Directory with the trained artifacts"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        1, ge=1, description="Server processes; metrics are aggregated across them"
    )
    engine: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="auto = ONNX Runtime on CPU, torch on CUDA"
    )
    threads: int | None = Field(
        None,
        ge=1,
        # TORCH_THREADS: its name from before the ONNX Runtime engine, still accepted.
        validation_alias=AliasChoices("threads", "torch_threads"),
        description="Intra-op threads per worker (either engine); default CPU budget / workers",
    )
    max_texts_per_request: int = Field(256, ge=1)
    max_text_chars: int = Field(20_000, ge=1, description="Longer texts are rejected with 422")
    truncation: Literal["truncate", "reject"] = Field(
        "truncate", description="Texts over the model's max length: cut (and say so) or reject"
    )
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1, description="Larger bodies get 413 unread")
    max_batch_size: int = Field(64, ge=1, description="Texts per forward pass")
    max_batch_tokens: int = Field(8192, ge=1, description="Padded tokens per forward pass")
    max_wait_ms: float = Field(0.0, ge=0, description="Extra wait for a fuller batch; 0 = none")
    max_queue_texts: int = Field(2048, ge=1, description="Queued texts before 429 Overloaded")
    max_queue_ms: float = Field(
        # From bench/soak-results.md: halves p50 and p99 under overload for ~10% of throughput.
        1000.0,
        ge=0,
        description="Estimated queue wait (queued texts x measured cost per text) before 429 "
        "Overloaded; 0 = no time bound",
    )
    max_explain_texts: int = Field(16, ge=1, description="Texts in one /explain request")
    max_concurrent_explain: int = Field(
        1, ge=1, description="/explain requests computed at once per worker; more get 429"
    )
    api_key: SecretStr | None = Field(
        None, description="If set, /classify, /explain and /v2 infer need this bearer key"
    )
    shutdown_timeout_s: int = Field(
        30, ge=1, description="On SIGTERM, wait this long for in-flight requests, then exit"
    )
    shutdown_delay_s: float = Field(
        0.0,
        ge=0,
        description="After SIGTERM, keep accepting and serving this long (readiness already "
        "fails, responses say Connection: close) before the server stops listening: for load "
        "balancers that need time to stop sending, where a preStop hook is not available",
    )
    log_level: str = "info"
    log_format: LogFormat = Field(
        "text", description="text, or json: one JSON object per log line for a log pipeline"
    )

    inference_thread: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Run forward passes on a dedicated thread (on), on the event loop (off), or "
        "auto: a thread unless a worker has only one CPU and no GPU",
    )

    def cpus_per_worker(self) -> int:
        return max(1, cpu_budget() // self.workers)

    def threads_per_worker(self) -> int:
        return self.threads or self.cpus_per_worker()


@lru_cache
def get_settings() -> Settings:
    return Settings()
