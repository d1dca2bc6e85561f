"""Service configuration, read from environment variables (documented in README.md)."""

import importlib.util
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from app.logs import LogFormat
from app.repository.store import EXTRA_MISSING, StoreAddress, StoreError, is_object_url

# Set by `python -m app` for its workers: the directory where they agree on the models they serve.
CONTROL_DIR_ENV = "RNN_CLASSIFIER_CONTROL_DIR"


def cpu_budget() -> int:
    """CPUs this process may run on (affinity/cgroup-pinned), not the host's core count."""
    return len(os.sched_getaffinity(0))


class Settings(BaseSettings):
    model_dir: Path = Field(
        Path("model_artifacts"), description="Directory with the trained artifacts"
    )
    model_repository: str | None = Field(
        None,
        description="Models and versions, <name>/<version>/: a directory, or an object store "
        "prefix s3://bucket/prefix (instead of MODEL_DIR, which is a repository of one)",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="Endpoint of an S3-compatible store (MinIO, Ceph, R2, ...); unset: AWS S3",
    )
    model_cache_dir: Path = Field(
        Path(tempfile.gettempdir()) / "rnn-classifier-models",
        description="Where versions from an object store are downloaded (reused at restart)",
    )
    model_cache_max_mb: int = Field(
        2048,
        ge=1,
        description="Bound of MODEL_CACHE_DIR: past it, the least recently fetched "
        "versions are removed",
    )
    model_control: Literal["none", "explicit", "poll"] = Field(
        "none",
        description="none: serve what is there at start; explicit: load and unload through "
        "/v2/repository (needs ADMIN_API_KEY); poll: follow the directory every POLL_INTERVAL_S",
    )
    poll_interval_s: float = Field(
        10.0, gt=0, description="How often poll mode reads the directory"
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="Bearer key of the /v2/repository routes and the gRPC repository RPCs (separate from "
        "API_KEY)",
    )
    default_model: str | None = Field(
        None, description="The model of requests that name none, when several are served"
    )
    max_loaded_models: int = Field(
        0,
        ge=0,
        description="Model versions loaded at once; past it the least recently used idle one is "
        "unloaded. 0 = no limit",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port of the gRPC server (Open Inference Protocol, on HOST, in the same "
        "process as REST); 0 = no gRPC server",
    )
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
        None,
        description="If set, /classify, /explain, /v2 infer and gRPC ModelInfer need this bearer key",
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

    @field_validator("model_repository", mode="before")
    @classmethod
    def _repository_as_text(cls, value: object) -> object:
        # A Path given in code (tests, the bulk CLI) is a directory: kept as its text.
        return str(value) if isinstance(value, Path) else value

    @model_validator(mode="after")
    def _control_is_safe(self) -> "Settings":
        if self.model_control == "explicit" and self.admin_api_key is None:
            raise ValueError(
                "MODEL_CONTROL=explicit needs ADMIN_API_KEY: load and unload must not be open "
                "to anyone who can reach the service"
            )
        if self.model_repository is not None and "model_dir" in self.model_fields_set:
            raise ValueError("set MODEL_DIR or MODEL_REPOSITORY, not both")
        if is_object_url(self.model_repository):
            try:
                StoreAddress.parse(str(self.model_repository))
            except StoreError as exc:
                raise ValueError(f"MODEL_REPOSITORY: {exc}") from exc
            if importlib.util.find_spec("obstore") is None:
                raise ValueError(EXTRA_MISSING.format(extra="rnn-text-classifier[s3]"))
        return self

    def cpus_per_worker(self) -> int:
        return max(1, cpu_budget() // self.workers)

    def threads_per_worker(self) -> int:
        return self.threads or self.cpus_per_worker()


@lru_cache
def get_settings() -> Settings:
    return Settings()
