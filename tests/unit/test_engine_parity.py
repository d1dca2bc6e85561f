"""The ONNX Runtime engine answers exactly as the torch model it was built from."""

import csv

import numpy as np
import onnx
import pytest
import torch

from app.core.architecture import ModelConfig
from app.core.artifacts import load_artifacts
from app.core.network import RNNClassifier, collate, from_weights, numpy_weights
from app.core.ngrams import HASHING
from app.engines.onnx_graph import build_graph
from app.engines.onnx_runtime import OnnxEngine
from tests.support.artifacts import BUNDLED_MODEL, ROOT

VOCAB = 40
# Mixed lengths, including a one-token text and the longest one last and first, and <unk> (1),
# alone and twice in a row (the n-gram branch scores neither it nor its pairs).
SEQUENCES = [
    [5, 6, 7],
    [8, 9, 10, 11, 12, 13, 14, 15, 16],
    [4],
    [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 39, 38],
    [20, 1, 22, 1, 1, 25],
]
ATOL = 1e-5


def random_model(
    rnn_type: str, bidirectional: bool, pooling: str, num_layers: int = 1, ngram_buckets: int = 0
) -> RNNClassifier:
    """Small dims, weights large enough that probabilities are far from uniform."""
    torch.manual_seed(7)
    config = ModelConfig(
        vocab_size=VOCAB,
        num_classes=3,
        embedding_dim=8,
        hidden_dim=6,
        rnn_type=rnn_type,  # type: ignore[arg-type]
        bidirectional=bidirectional,
        pooling=pooling,  # type: ignore[arg-type]
        num_layers=num_layers,
        ngram_buckets=ngram_buckets,
        ngram_hashing=HASHING if ngram_buckets else "",
    )
    model = RNNClassifier(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.8)
    return model.eval()


def onnx_engine(model: RNNClassifier, threads: int) -> OnnxEngine:
    return OnnxEngine(model.config, numpy_weights(model), threads)


def torch_probabilities(model: RNNClassifier, sequences: list[list[int]]) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(model(*collate(sequences)), dim=-1).numpy()


# Few buckets, so that pairs share them as they do in a real model.
BUCKETS = 7
CASES = [
    (rnn_type, bidirectional, pooling, num_layers, 0)
    for rnn_type in ("rnn", "gru", "lstm")
    for bidirectional in (False, True)
    for pooling in ("last", "max", "max_mean")
    for num_layers in (1, 2)
] + [
    (rnn_type, True, pooling, 1, BUCKETS)
    for rnn_type in ("rnn", "gru", "lstm")
    for pooling in ("last", "max", "max_mean")
]
CASE_NAMES = ("rnn_type", "bidirectional", "pooling", "num_layers", "ngram_buckets")


@pytest.mark.parametrize(CASE_NAMES, CASES)
def test_probabilities_equal_torch(
    rnn_type: str, bidirectional: bool, pooling: str, num_layers: int, ngram_buckets: int
) -> None:
    model = random_model(rnn_type, bidirectional, pooling, num_layers, ngram_buckets)
    expected = torch_probabilities(model, SEQUENCES)
    got = onnx_engine(model, threads=1).predict(SEQUENCES)
    assert got.dtype == np.float32
    assert got.shape == (len(SEQUENCES), 3)
    # Not a near-uniform answer, where any wiring would pass the tolerance.
    assert expected.max() - expected.min() > 0.3
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize(CASE_NAMES, CASES)
def test_the_graphs_pass_the_onnx_checker(
    rnn_type: str, bidirectional: bool, pooling: str, num_layers: int, ngram_buckets: int
) -> None:
    model = random_model(rnn_type, bidirectional, pooling, num_layers, ngram_buckets)
    for trace in (False, True):
        onnx.checker.check_model(build_graph(model.config, numpy_weights(model), trace), True)


@pytest.mark.parametrize(CASE_NAMES, CASES)
def test_a_text_scores_the_same_alone_as_in_a_batch(
    rnn_type: str, bidirectional: bool, pooling: str, num_layers: int, ngram_buckets: int
) -> None:
    engine = onnx_engine(
        random_model(rnn_type, bidirectional, pooling, num_layers, ngram_buckets), threads=1
    )
    batched = engine.predict(SEQUENCES)
    for row, sequence in enumerate(SEQUENCES):
        np.testing.assert_allclose(engine.predict([sequence])[0], batched[row], atol=ATOL, rtol=0)


def test_more_threads_give_the_same_answer() -> None:
    model = random_model("gru", True, "max_mean", ngram_buckets=BUCKETS)
    batch = [SEQUENCES[i % len(SEQUENCES)] for i in range(64)]
    np.testing.assert_allclose(
        onnx_engine(model, threads=2).predict(batch),
        onnx_engine(model, threads=1).predict(batch),
        atol=ATOL,
        rtol=0,
    )


def test_bundled_model_on_real_texts() -> None:
    """300 reviews of mixed lengths in one batch, some cut at the model's max length."""
    with (ROOT / "data" / "rotten_tomatoes.csv").open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for _, row in zip(range(300), csv.DictReader(f), strict=False)]
    artifacts = load_artifacts(BUNDLED_MODEL)
    sequences = [artifacts.tokenizer.encode(t, artifacts.max_length).ids for t in texts]
    assert len({len(s) for s in sequences}) > 10
    network = from_weights(artifacts.architecture, artifacts.weights)
    expected = torch_probabilities(network, sequences)
    got = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1).predict(sequences)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
