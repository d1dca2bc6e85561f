"""A model with the n-gram branch, as the service loads it: both engines answer alike, /explain
shows the branch, an unknown hashing is refused, a model without the branch reads as before."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app.core.architecture import ModelConfig
from app.core.artifacts import CONFIG_FILE, ArtifactError, load_artifacts
from app.core.network import RNNClassifier, collate
from app.core.ngrams import HASHING
from app.engines.onnx_runtime import OnnxEngine
from app.engines.torch_eager import TorchEngine
from app.infer.occlusion import explain
from tests.support.artifacts import TEXTS, make_artifacts
from training.calibration import fold_temperature
from training.embedding import MappedEmbedding, fold

BUCKETS = 11


@pytest.fixture
def branched_dir(tmp_path: Path) -> Path:
    return make_artifacts(tmp_path / "branched", ngram_buckets=BUCKETS)


def test_the_config_names_the_branch_and_its_hashing(branched_dir: Path) -> None:
    model = json.loads((branched_dir / CONFIG_FILE).read_text())["model"]
    assert model["ngram_buckets"] == BUCKETS and model["ngram_hashing"] == HASHING
    artifacts = load_artifacts(branched_dir)
    assert artifacts.weights["ngrams.pairs"].shape == (BUCKETS, 2)
    assert artifacts.weights["ngrams.words"].shape == (len(artifacts.tokenizer), 2)


def test_a_model_without_the_branch_writes_the_config_it_always_did(tmp_path: Path) -> None:
    """So a service from before the branch still loads every model trained without one."""
    model = json.loads((make_artifacts(tmp_path / "plain") / CONFIG_FILE).read_text())["model"]
    assert not any(key.startswith("ngram") for key in model)


def test_an_unknown_hashing_is_refused_by_name(branched_dir: Path) -> None:
    path = branched_dir / CONFIG_FILE
    config = json.loads(path.read_text())
    config["model"]["ngram_hashing"] = "word-id-pairs-v9"
    path.write_text(json.dumps(config))
    with pytest.raises(ArtifactError) as refused:
        load_artifacts(branched_dir)
    assert refused.value.file == CONFIG_FILE
    assert "word-id-pairs-v9" in str(refused.value) and HASHING in str(refused.value)


def test_both_engines_answer_and_explain_alike(branched_dir: Path) -> None:
    artifacts = load_artifacts(branched_dir)
    encoded = [artifacts.tokenizer.encode(t, artifacts.max_length) for t in TEXTS]
    sequences = [item.ids for item in encoded]
    onnx = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1)
    eager = TorchEngine(artifacts, "cpu", threads=1)
    np.testing.assert_allclose(onnx.predict(sequences), eager.predict(sequences), atol=1e-5)
    by_engine = [
        explain(engine, artifacts.architecture, artifacts.labels, TEXTS, encoded)
        for engine in (onnx, eager)
    ]
    for from_onnx, from_torch in zip(*by_engine, strict=True):
        branch, other = from_onnx.layers.ngrams, from_torch.layers.ngrams
        assert branch is not None and other is not None and branch.buckets == BUCKETS
        assert list(branch.logits.values()) == pytest.approx(list(other.logits.values()), abs=1e-5)
        # The branch is part of the logits the softmax reads, not beside them.
        logits = torch.tensor(list(from_onnx.layers.dense.logits.values()))
        served = list(from_onnx.probabilities.values())
        assert torch.softmax(logits, -1).tolist() == pytest.approx(served, abs=1e-5)
        assert any(abs(v) > 1e-3 for v in branch.logits.values())


def test_explain_shows_no_branch_for_a_model_without_one(tiny_model_dir: Path) -> None:
    artifacts = load_artifacts(tiny_model_dir)
    encoded = [artifacts.tokenizer.encode(TEXTS[0], artifacts.max_length)]
    engine = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1)
    [explained] = explain(engine, artifacts.architecture, artifacts.labels, TEXTS[:1], encoded)
    assert explained.layers.ngrams is None


def branched_model() -> RNNClassifier:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=12,
        num_classes=3,
        embedding_dim=4,
        hidden_dim=3,
        ngram_buckets=BUCKETS,
        ngram_hashing=HASHING,
    )
    model = RNNClassifier(config).eval()
    assert model.ngrams is not None
    with torch.no_grad():
        for scores in model.ngrams.parameters():
            scores.normal_()
    return model


SEQUENCES = [[2, 3, 4], [5, 6], [7, 8, 9, 10, 11]]


def test_the_temperature_divides_the_branch_as_well() -> None:
    model = branched_model()
    with torch.inference_mode():
        logits = model(*collate(SEQUENCES))
        folded = fold_temperature(model, 2.5)(*collate(SEQUENCES))
    torch.testing.assert_close(folded, logits / 2.5)


def test_words_added_after_training_get_no_branch_scores() -> None:
    """The vocabulary extension (--extra-vocab) appends words training never saw: the folded
    model answers the training words exactly as before, and the new words' rows are zeros."""
    model = branched_model()
    vectors = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    mapped = MappedEmbedding(vectors, np.ones(12, bool), 4)
    model.add_module("embedding", mapped)
    extension = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    folded = fold(model, extension)
    assert folded.config == replace(model.config, vocab_size=15)
    assert folded.ngrams is not None and model.ngrams is not None
    assert not folded.ngrams.words[12:].any()
    with torch.inference_mode():
        torch.testing.assert_close(folded(*collate(SEQUENCES)), model(*collate(SEQUENCES)))
