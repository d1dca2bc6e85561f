"""The files a trained model is shipped as, and the checks made before serving them.

model.safetensors (weights, no pickle), vocab.json (tokenizer), known_answers.json (texts with the
probabilities training computed for them), config.json (architecture, labels, max length,
checksums of the other files, headline metrics). Anything that does not match is refused with the
name of the file at fault, so a half-valid model is never served.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file

from app.core.architecture import ModelConfig
from app.core.ngrams import HASHING
from app.core.tokenizer import TOKENIZER_SETTINGS, Tokenizer

Weights = dict[str, np.ndarray]  # float32 arrays by torch's state dict names

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
KNOWN_ANSWERS_FILE = "known_answers.json"


class ArtifactError(Exception):
    """An artifact is missing, corrupted or inconsistent; `file` names the one at fault."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file


@dataclass(frozen=True)
class KnownAnswers:
    """Texts and the probabilities [N, C] training computed for them. `covers_vocabulary`: the
    texts hold every word of the vocabulary (artifacts before known_answers.json held 8 texts
    in config.json)."""

    texts: list[str]
    probabilities: np.ndarray
    covers_vocabulary: bool

    def to_json(self) -> str:
        rows = np.round(self.probabilities.astype(np.float64), 7).tolist()
        payload = {
            "texts": self.texts,
            "probabilities": rows,
            "covers_vocabulary": self.covers_vocabulary,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def parse(cls, payload: Any, file: str) -> "KnownAnswers":
        covers = False
        try:
            if isinstance(payload, list):  # config.json's older list of {"text", "probabilities"}
                texts = [str(item["text"]) for item in payload]
                rows = [item["probabilities"] for item in payload]
            else:
                texts, rows = [str(text) for text in payload["texts"]], payload["probabilities"]
                covers = payload.get("covers_vocabulary") is True
            probabilities = np.array(rows, np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(file, f"known answers malformed ({exc})") from exc
        if probabilities.ndim != 2 or len(probabilities) != len(texts):
            raise ArtifactError(file, f"known answers malformed ({probabilities.shape} answers)")
        return cls(texts, probabilities, covers)


@dataclass(frozen=True)
class Artifacts:
    architecture: ModelConfig
    weights: Weights
    tokenizer: Tokenizer
    labels: list[str]
    max_length: int
    config: dict[str, Any]
    known_answers: KnownAnswers | None

    @property
    def name(self) -> str:
        return str(self.config["name"])

    @property
    def version(self) -> str:
        return str(self.config["version"])

    @property
    def checksum(self) -> str:
        """sha256 of the weights: identifies exactly which model answered."""
        return str(self.config["files"][WEIGHTS_FILE])

    @property
    def parameters(self) -> int:
        return sum(tensor.size for tensor in self.weights.values())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_artifacts(
    directory: Path,
    architecture: ModelConfig,
    weights: Weights,
    tokenizer: Tokenizer,
    labels: list[str],
    max_length: int,
    name: str,
    version: str,
    extra: dict[str, Any],
    known_answers: KnownAnswers | None = None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in weights.items()}, str(directory / WEIGHTS_FILE)
    )
    # safetensors writes 0600; a container user other than the trainer must be able to read it.
    (directory / WEIGHTS_FILE).chmod(0o644)
    tokenizer.save(directory / VOCAB_FILE)
    files = [WEIGHTS_FILE, VOCAB_FILE]
    if known_answers is not None:
        (directory / KNOWN_ANSWERS_FILE).write_text(known_answers.to_json(), encoding="utf-8")
        files.append(KNOWN_ANSWERS_FILE)
    config = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "labels": labels,
        "max_length": max_length,
        "model": architecture.to_dict(),
        "tokenizer": {"file": VOCAB_FILE, **TOKENIZER_SETTINGS},
        "files": {f: sha256_of(directory / f) for f in files},
        **extra,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _read(directory: Path, file: str) -> bytes:
    try:
        return (directory / file).read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(file, f"missing in {directory}") from exc
    except OSError as exc:  # e.g. a mounted model whose files the service user cannot read
        raise ArtifactError(file, f"cannot be read ({exc.strerror})") from exc


def _parse_config(raw: bytes) -> dict[str, Any]:
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(CONFIG_FILE, f"not valid JSON ({exc})") from exc
    version = config.get("format_version") if isinstance(config, dict) else None
    if not isinstance(config, dict) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            CONFIG_FILE,
            f"format_version {version!r} is not supported (this service reads up to {FORMAT_VERSION})",
        )
    return config


def _verified(directory: Path, file: str, config: dict[str, Any]) -> bytes:
    """The file's bytes, read once, so what is checked is exactly what is loaded."""
    data = _read(directory, file)
    if hashlib.sha256(data).hexdigest() != config.get("files", {}).get(file):
        raise ArtifactError(file, "sha256 does not match config.json (corrupted or replaced)")
    return data


def verify_artifacts(directory: Path) -> None:
    """ArtifactError naming the file at fault unless the directory holds a complete artifact:
    config.json readable, the other files there with the checksums it records."""
    config = _parse_config(_read(directory, CONFIG_FILE))
    for file in _files(config):
        _verified(directory, file, config)


def _files(config: dict[str, Any]) -> list[str]:
    """The files config.json vouches for: known answers only in artifacts that have them."""
    listed = config.get("files")
    optional = (
        [KNOWN_ANSWERS_FILE] if isinstance(listed, dict) and KNOWN_ANSWERS_FILE in listed else []
    )
    return [WEIGHTS_FILE, VOCAB_FILE, *optional]


def _known_answers(directory: Path, config: dict[str, Any]) -> KnownAnswers | None:
    if KNOWN_ANSWERS_FILE in _files(config):
        raw = _verified(directory, KNOWN_ANSWERS_FILE, config)
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(KNOWN_ANSWERS_FILE, f"not valid JSON ({exc})") from exc
        return KnownAnswers.parse(payload, KNOWN_ANSWERS_FILE)
    legacy = config.get("known_answers")
    return KnownAnswers.parse(legacy, CONFIG_FILE) if legacy else None


def load_artifacts(directory: Path) -> Artifacts:
    """Load and verify a model directory; raise ArtifactError naming the file at fault."""
    config = _parse_config(_read(directory, CONFIG_FILE))
    weights = _verified(directory, WEIGHTS_FILE, config)
    vocab = _verified(directory, VOCAB_FILE, config)
    try:
        tokenizer = Tokenizer.from_json(vocab.decode("utf-8"))
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise ArtifactError(VOCAB_FILE, str(exc)) from exc
    try:
        model_config = ModelConfig(**config["model"])
        labels = [str(label) for label in config["labels"]]
        max_length = int(config["max_length"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(CONFIG_FILE, f"bad or missing field ({exc})") from exc
    if model_config.ngram_buckets and model_config.ngram_hashing != HASHING:
        raise ArtifactError(
            CONFIG_FILE,
            f"n-gram hashing {model_config.ngram_hashing!r} is not one this service computes "
            f"({HASHING!r}): serve the model with the version of the service that trained it",
        )
    if model_config.vocab_size != len(tokenizer):
        raise ArtifactError(
            VOCAB_FILE,
            f"{len(tokenizer)} tokens, but the model was built for {model_config.vocab_size}",
        )
    if model_config.num_classes != len(labels) or len(labels) < 2:
        raise ArtifactError(
            CONFIG_FILE, f"{len(labels)} labels for {model_config.num_classes} classes"
        )
    return Artifacts(
        model_config,
        _weights(weights, model_config),
        tokenizer,
        labels,
        max_length,
        config,
        _known_answers(directory, config),
    )


def _weights(data: bytes, architecture: ModelConfig) -> Weights:
    """The tensors of the weights file, exactly the ones the architecture needs, as float32."""
    try:
        weights = load_safetensors(data)
    except Exception as exc:  # not a safetensors file
        raise ArtifactError(WEIGHTS_FILE, f"cannot be read as safetensors ({exc})") from exc
    expected = architecture.weight_shapes()
    found = {name: tuple(tensor.shape) for name, tensor in weights.items()}
    if found != expected:
        wrong = sorted(n for n in expected.keys() | found.keys() if found.get(n) != expected.get(n))
        raise ArtifactError(
            WEIGHTS_FILE,
            "does not fit the configured model (tensors missing, unexpected or of the wrong shape: "
            + ", ".join(f"{n} {found.get(n)} for {expected.get(n)}" for n in wrong[:5])
            + ")",
        )
    return {name: tensor.astype(np.float32, copy=False) for name, tensor in weights.items()}
