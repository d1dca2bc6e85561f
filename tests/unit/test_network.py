import pytest
import torch

from app.core.architecture import ModelConfig
from app.core.network import RNNClassifier, collate

SEQUENCES = [
    [5, 6, 7],
    [8, 9, 10, 11, 12, 13, 14, 15, 16],
    [4],
    [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
]


def model_of(**overrides: object) -> RNNClassifier:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=20, num_classes=3, embedding_dim=8, hidden_dim=6, **overrides)  # type: ignore[arg-type]
    return RNNClassifier(config).eval()


def test_collate_pads_to_longest_in_batch() -> None:
    ids, lengths = collate([[3, 4], [5]])
    assert ids.tolist() == [[3, 4], [5, 0]]
    assert lengths.tolist() == [2, 1]


@pytest.mark.parametrize("rnn_type", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "max_mean"])
def test_logits_shape(rnn_type: str, bidirectional: bool, pooling: str) -> None:
    model = model_of(rnn_type=rnn_type, bidirectional=bidirectional, pooling=pooling)
    assert model(*collate(SEQUENCES)).shape == (len(SEQUENCES), 3)


@pytest.mark.parametrize("rnn_type", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "max", "max_mean"])
def test_padding_never_changes_a_result(rnn_type: str, pooling: str) -> None:
    """A text scores the same alone as inside a batch of longer texts."""
    model = model_of(rnn_type=rnn_type, pooling=pooling)
    with torch.inference_mode():
        batched = torch.softmax(model(*collate(SEQUENCES)), dim=-1)
        for row, seq in enumerate(SEQUENCES):
            alone = torch.softmax(model(*collate([seq])), dim=-1)[0]
            torch.testing.assert_close(alone, batched[row], atol=1e-5, rtol=0)


def test_trace_shows_every_layer() -> None:
    model = model_of()
    with torch.inference_mode():
        trace = model.trace(*collate(SEQUENCES[:2]))
    longest = max(len(s) for s in SEQUENCES[:2])
    assert list(trace) == ["token_ids", "embedding", "rnn_steps", "rnn", "dense", "softmax"]
    assert trace["embedding"].shape == (2, longest, 8)
    assert trace["rnn_steps"].shape == (2, longest, 12)
    # The first text is the shorter one: its padding steps are zeros, its real steps are not.
    assert not trace["rnn_steps"][0, len(SEQUENCES[0]) :].any()
    assert trace["rnn_steps"][0, : len(SEQUENCES[0])].abs().sum(dim=-1).all()
    assert trace["rnn"].shape == (2, 12)  # bidirectional: 2 x hidden
    assert trace["dense"].shape == (2, 3)
    torch.testing.assert_close(trace["softmax"].sum(dim=-1), torch.ones(2))


@pytest.mark.parametrize("pooling", ["last", "max", "max_mean"])
def test_forward_from_the_embedded_words_is_the_forward_pass(pooling: str) -> None:
    """Adversarial training runs the network from (perturbed) word vectors: unperturbed, it must
    give exactly what the forward pass gives."""
    model = model_of(pooling=pooling)
    ids, lengths = collate(SEQUENCES)
    with torch.inference_mode():
        expected = model(ids, lengths)
        got = model.forward_from_embedded(model.embedding(ids), lengths)
    assert torch.equal(got, expected)
