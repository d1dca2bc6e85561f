import hashlib
import json
from pathlib import Path

import pytest
import torch

from app.core.artifacts import (
    CONFIG_FILE,
    KNOWN_ANSWERS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    load_artifacts,
)
from app.core.network import collate, from_weights
from app.core.tokenizer import Tokenizer
from tests.support.artifacts import TEXTS, make_artifacts


def predict(directory: Path) -> torch.Tensor:
    artifacts = load_artifacts(directory)
    ids = [artifacts.tokenizer.encode(t, artifacts.max_length).ids for t in TEXTS]
    with torch.inference_mode():
        return from_weights(artifacts.architecture, artifacts.weights)(*collate(ids))


def test_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    first = make_artifacts(tmp_path / "a")
    config = json.loads((first / CONFIG_FILE).read_text())
    assert config["labels"] == ["neg", "pos"] and config["max_length"] == 12
    assert set(config["files"]) == {WEIGHTS_FILE, VOCAB_FILE, KNOWN_ANSWERS_FILE}
    # Same seed, same files: loading twice and re-saving agree exactly.
    second = make_artifacts(tmp_path / "b")
    assert (first / WEIGHTS_FILE).read_bytes() == (second / WEIGHTS_FILE).read_bytes()
    torch.testing.assert_close(predict(first), predict(second), atol=0, rtol=0)


def test_weights_are_safetensors_not_pickle(tiny_model_dir: Path) -> None:
    header_length = int.from_bytes((tiny_model_dir / WEIGHTS_FILE).read_bytes()[:8], "little")
    header = json.loads((tiny_model_dir / WEIGHTS_FILE).read_bytes()[8 : 8 + header_length])
    assert "embedding.weight" in header


def refused(directory: Path) -> ArtifactError:
    with pytest.raises(ArtifactError) as caught:
        load_artifacts(directory)
    return caught.value


def test_altered_weights_are_refused(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    error = refused(tiny_model_dir)
    assert error.file == WEIGHTS_FILE and "sha256" in str(error)


def test_truncated_weights_are_refused(tiny_model_dir: Path) -> None:
    weights = tiny_model_dir / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    assert refused(tiny_model_dir).file == WEIGHTS_FILE


@pytest.mark.parametrize("missing", [WEIGHTS_FILE, VOCAB_FILE, CONFIG_FILE, KNOWN_ANSWERS_FILE])
def test_missing_file_is_named(tiny_model_dir: Path, missing: str) -> None:
    (tiny_model_dir / missing).unlink()
    assert refused(tiny_model_dir).file == missing


def test_vocabulary_that_does_not_fit_the_weights_is_refused(tiny_model_dir: Path) -> None:
    Tokenizer.build(["other words entirely here"]).save(tiny_model_dir / VOCAB_FILE)
    config = json.loads((tiny_model_dir / CONFIG_FILE).read_text())
    # Even with a matching checksum (someone re-signed it), the sizes must agree.
    config["files"][VOCAB_FILE] = hashlib.sha256(
        (tiny_model_dir / VOCAB_FILE).read_bytes()
    ).hexdigest()
    (tiny_model_dir / CONFIG_FILE).write_text(json.dumps(config))
    error = refused(tiny_model_dir)
    assert error.file == VOCAB_FILE and "tokens" in str(error)


def test_config_from_a_newer_format_is_refused(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / CONFIG_FILE).read_text())
    config["format_version"] = 99
    (tiny_model_dir / CONFIG_FILE).write_text(json.dumps(config))
    error = refused(tiny_model_dir)
    assert error.file == CONFIG_FILE and "99" in str(error)


def test_unreadable_file_is_named_not_raised_raw(tiny_model_dir: Path) -> None:
    (tiny_model_dir / VOCAB_FILE).unlink()
    (tiny_model_dir / VOCAB_FILE).mkdir()  # unreadable as a file, even for root
    error = refused(tiny_model_dir)
    assert error.file == VOCAB_FILE and "cannot be read" in str(error)
