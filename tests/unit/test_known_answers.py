"""The load check covers the whole vocabulary: an edit that changes what any one word means is
refused, by every engine, even when every checksum was recomputed; older artifacts still load."""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

from app.core.artifacts import (
    CONFIG_FILE,
    KNOWN_ANSWERS_FILE,
    VOCAB_FILE,
    ArtifactError,
    load_artifacts,
)
from app.core.tokenizer import UNK_ID
from app.engines.choice import make_engine
from app.lifecycle.known_answers import check_known_answers
from tests.support.artifacts import BUNDLED_MODEL, make_artifacts


def resign(directory: Path, file: str) -> None:
    """Recompute the file's checksum in config.json, as someone editing the model would."""
    config = json.loads((directory / CONFIG_FILE).read_text())
    config["files"][file] = hashlib.sha256((directory / file).read_bytes()).hexdigest()
    (directory / CONFIG_FILE).write_text(json.dumps(config))


def check(directory: Path, engine: str = "onnx") -> None:
    artifacts = load_artifacts(directory)
    check_known_answers(artifacts, make_engine(engine, artifacts, "cpu", 1))


@pytest.fixture
def bundled_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BUNDLED_MODEL, tmp_path / "model"))


def test_the_known_answers_hold_every_word_an_unknown_word_and_a_cut_text() -> None:
    artifacts = load_artifacts(BUNDLED_MODEL)
    known = artifacts.known_answers
    assert known is not None and known.covers_vocabulary
    encoded = [artifacts.tokenizer.encode(t, artifacts.max_length) for t in known.texts]
    seen = {i for item in encoded for i in item.ids}
    assert seen >= set(range(UNK_ID, len(artifacts.tokenizer)))
    assert any(item.truncated for item in encoded)
    assert any(item.ids == [UNK_ID] and item.num_tokens == 1 for item in encoded)


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_two_swapped_words_are_refused_by_every_engine(bundled_copy: Path, engine: str) -> None:
    check(bundled_copy, engine)  # the bundled model as trained passes
    vocabulary = json.loads((bundled_copy / VOCAB_FILE).read_text())
    tokens = vocabulary["tokens"]
    good, bad = tokens.index("good"), tokens.index("bad")
    tokens[good], tokens[bad] = "bad", "good"
    (bundled_copy / VOCAB_FILE).write_text(json.dumps(vocabulary))
    resign(bundled_copy, VOCAB_FILE)
    with pytest.raises(
        ArtifactError, match=r"known answers differ on 2 of \d+ texts: '(good|bad)'"
    ):
        check(bundled_copy, engine)


def test_a_changed_maximum_length_is_refused(bundled_copy: Path) -> None:
    config = json.loads((bundled_copy / CONFIG_FILE).read_text())
    config["max_length"] -= 5
    (bundled_copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="known answers differ"):
        check(bundled_copy)


def test_edited_known_answers_are_refused_by_their_checksum(bundled_copy: Path) -> None:
    known = json.loads((bundled_copy / KNOWN_ANSWERS_FILE).read_text())
    known["texts"] = known["texts"][:10]
    (bundled_copy / KNOWN_ANSWERS_FILE).write_text(json.dumps(known))
    with pytest.raises(ArtifactError, match="sha256") as caught:
        load_artifacts(bundled_copy)
    assert caught.value.file == KNOWN_ANSWERS_FILE


def test_an_artifact_from_before_the_vocabulary_check_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = make_artifacts(tmp_path / "old")
    known = json.loads((directory / KNOWN_ANSWERS_FILE).read_text())
    config = json.loads((directory / CONFIG_FILE).read_text())
    # What training wrote before: a handful of texts inside config.json, no known_answers.json.
    config["known_answers"] = [
        {"text": text, "probabilities": row}
        for text, row in list(zip(known["texts"], known["probabilities"], strict=True))[-4:]
    ]
    del config["files"][KNOWN_ANSWERS_FILE]
    (directory / KNOWN_ANSWERS_FILE).unlink()
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        check(directory)
    assert "checked on 4 known answers, not its whole vocabulary" in caplog.text
    config["known_answers"][0]["probabilities"] = [0.5, 0.5]
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="known answers differ") as caught:
        check(directory)
    assert caught.value.file == CONFIG_FILE
