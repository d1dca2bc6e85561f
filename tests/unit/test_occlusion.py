"""Explanations on the bundled model: the layers agree with /classify's computation, and the
attributions point at the words that move the prediction."""

import random
from pathlib import Path

import pytest
import torch

from app.core.artifacts import Artifacts, load_artifacts
from app.core.network import collate, from_weights
from app.core.tokenizer import UNK_ID
from app.engines.onnx_runtime import OnnxEngine
from app.engines.torch_eager import TorchEngine
from app.infer.explanation import Explanation
from app.infer.occlusion import explain, occlusion_variants
from app.trace import main as trace_main
from tests.support.artifacts import BUNDLED_MODEL
from training.data import BUNDLED_DATA, load_examples, split_examples

NEUTRAL_TEMPLATES = [
    "the film is {}",
    "the story of the movie is {} and it runs two hours",
    "{} , from start to finish",
    "a {} movie about a family in new york",
]
SENTIMENT_WORDS = {
    "positive": ["wonderful", "brilliant", "beautiful", "delightful", "charming"],
    "negative": ["dull", "boring", "awful", "tedious", "mess"],
}


@pytest.fixture(scope="module")
def artifacts() -> Artifacts:
    return load_artifacts(BUNDLED_MODEL)


def explain_texts(artifacts: Artifacts, texts: list[str]) -> list[Explanation]:
    encoded = [artifacts.tokenizer.encode(text, artifacts.max_length) for text in texts]
    engine = OnnxEngine(artifacts.architecture, artifacts.weights, threads=1)
    return explain(engine, artifacts.architecture, artifacts.labels, texts, encoded)


def test_occlusion_variants_replace_one_token_each() -> None:
    assert occlusion_variants([7, 8, 9]) == [
        [7, 8, 9],
        [UNK_ID, 8, 9],
        [7, UNK_ID, 9],
        [7, 8, UNK_ID],
    ]


def test_layers_describe_the_text_and_agree_with_the_served_prediction(
    artifacts: Artifacts,
) -> None:
    texts = ["A gripping, beautifully acted film.", "xyzzyq " * 50]
    explained = explain_texts(artifacts, texts)
    served = TorchEngine(artifacts, "cpu", threads=1).predict(
        [artifacts.tokenizer.encode(t, artifacts.max_length).ids for t in texts]
    )
    config = artifacts.architecture
    for explanation, probabilities in zip(explained, served.tolist(), strict=True):
        layers = explanation.layers
        length = len(layers.input.tokens)
        assert len(layers.input.ids) == len(layers.input.unknown) == length
        assert layers.embedding.shape == [length, config.embedding_dim]
        assert len(layers.embedding.norms) == length
        assert layers.rnn.shape == [length, config.hidden_dim * 2]  # bidirectional
        assert len(layers.rnn.step_norms) == length
        assert layers.rnn.pooled_features == config.hidden_dim * 2 * 2  # max + mean
        assert layers.softmax.label == explanation.label
        for label, p in zip(artifacts.labels, probabilities, strict=True):
            assert explanation.probabilities[label] == pytest.approx(p, abs=1e-5)
        # The logits are the layer the probabilities come from.
        logits = torch.tensor(list(layers.dense.logits.values()))
        assert torch.softmax(logits, -1).tolist() == pytest.approx(probabilities, abs=1e-5)
        assert set(explanation.attributions) == set(artifacts.labels)
        assert all(len(values) == length for values in explanation.attributions.values())
    first, long = explained
    assert first.layers.input.tokens[:3] == ["a", "gripping", ","]
    assert not any(first.layers.input.unknown)
    assert long.layers.input.truncated and long.tokens == 50
    assert len(long.layers.input.tokens) == artifacts.max_length
    assert all(long.layers.input.unknown)


@pytest.mark.parametrize("template", NEUTRAL_TEMPLATES)
def test_the_one_sentiment_word_gets_the_largest_attribution(
    artifacts: Artifacts, template: str
) -> None:
    cases = [(word, label) for label, words in SENTIMENT_WORDS.items() for word in words]
    explained = explain_texts(artifacts, [template.format(word) for word, _ in cases])
    for (word, label), explanation in zip(cases, explained, strict=True):
        assert explanation.label == label, (word, explanation.probabilities)
        toward_label = explanation.attributions[label]
        top = max(range(len(toward_label)), key=toward_label.__getitem__)
        assert explanation.layers.input.tokens[top] == word, (word, toward_label)


def test_deleting_the_top_attributed_word_moves_the_prediction_more_than_a_random_one(
    artifacts: Artifacts,
) -> None:
    """Attributions come from replacing a token by <unk>; the check deletes the word instead,
    so it asks whether they predict a different edit, not whether occlusion equals itself."""
    rng = random.Random(0)
    test_split = split_examples(load_examples(Path(BUNDLED_DATA)))["test"]
    texts = [e.text for e in rng.sample(test_split, 300)]
    explained = [e for e in explain_texts(artifacts, texts) if len(e.layers.input.ids) >= 3]
    rows, edits = [], []
    for explanation in explained:
        ids = explanation.layers.input.ids
        toward_label = explanation.attributions[explanation.label]
        top = max(range(len(ids)), key=toward_label.__getitem__)
        other = rng.randrange(len(ids))
        rows += [ids[:top] + ids[top + 1 :], ids[:other] + ids[other + 1 :]]
        edits.append(explanation)
    with torch.inference_mode():
        network = from_weights(artifacts.architecture, artifacts.weights)
        probabilities = torch.softmax(network(*collate(rows)), dim=-1)
    label_index = {label: i for i, label in enumerate(artifacts.labels)}
    top_moves, random_moves = [], []
    for n, explanation in enumerate(edits):
        column = label_index[explanation.label]
        top_moves.append(abs(explanation.score - float(probabilities[2 * n, column])))
        random_moves.append(abs(explanation.score - float(probabilities[2 * n + 1, column])))
    mean_top, mean_random = sum(top_moves) / len(edits), sum(random_moves) / len(edits)
    assert len(edits) > 250
    assert mean_top > mean_random, (mean_top, mean_random)


def test_trace_cli_prints_the_layers_and_the_deciding_word(
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace_main(["the film is tedious", "--model-dir", str(BUNDLED_MODEL)])
    out = capsys.readouterr().out
    for layer in ("tokens", "embedding", "rnn", "dense", "softmax", "prediction negative"):
        assert layer in out
    # Attributions are listed largest first: the deciding word leads.
    assert out.split("probability drop without it):\n")[1].split()[0] == "tedious"


def test_explanations_on_onnx_runtime_equal_the_torch_reference(artifacts: Artifacts) -> None:
    texts = ["A gripping, beautifully acted film.", "dull", "xyzzyq " * 50]
    encoded = [artifacts.tokenizer.encode(text, artifacts.max_length) for text in texts]
    by_engine = [
        explain(engine, artifacts.architecture, artifacts.labels, texts, encoded)
        for engine in (
            OnnxEngine(artifacts.architecture, artifacts.weights, threads=1),
            TorchEngine(artifacts, "cpu", threads=1),
        )
    ]
    for onnx, reference in zip(*by_engine, strict=True):
        assert onnx.label == reference.label
        assert onnx.layers.input == reference.layers.input
        assert onnx.layers.embedding.shape == reference.layers.embedding.shape
        assert onnx.layers.rnn.shape == reference.layers.rnn.shape
        assert onnx.layers.rnn.pooled_features == reference.layers.rnn.pooled_features
        for got, want in [
            (onnx.layers.embedding.norms, reference.layers.embedding.norms),
            (onnx.layers.rnn.step_norms, reference.layers.rnn.step_norms),
            (onnx.layers.dense.logits, reference.layers.dense.logits),
            (onnx.layers.softmax.probabilities, reference.layers.softmax.probabilities),
        ]:
            assert got == pytest.approx(want, abs=1e-4)
        for label in artifacts.labels:
            assert onnx.attributions[label] == pytest.approx(
                reference.attributions[label], abs=1e-5
            )
