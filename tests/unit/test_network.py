import pytest
import torch

from app.core.architecture import ModelConfig
from app.core.network import RNNClassifier, collate
from app.core.ngrams import HASHING, PRIME
from app.core.tokenizer import UNK_ID

SEQUENCES = [
    [5, 6, 7],
    [8, 9, 10, 11, 12, 13, 14, 15, 16],
    [4],
    [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    [UNK_ID, 6, UNK_ID, 9],
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


def with_branch(buckets: int = 5) -> RNNClassifier:
    """A model whose n-gram branch has random scores (a new branch starts at zero)."""
    model = model_of(ngram_buckets=buckets, ngram_hashing=HASHING)
    assert model.ngrams is not None
    with torch.no_grad():
        for scores in model.ngrams.parameters():
            scores.normal_()
    return model


@pytest.mark.parametrize("buckets", [0, 5])
@pytest.mark.parametrize("rnn_type", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "max", "max_mean"])
def test_padding_never_changes_a_result(rnn_type: str, pooling: str, buckets: int) -> None:
    """A text scores the same alone as inside a batch of longer texts."""
    model = model_of(rnn_type=rnn_type, pooling=pooling)
    if buckets:
        model = with_branch(buckets)
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
        got = model.forward_from_embedded(model.embedding(ids), lengths, ids)
    assert torch.equal(got, expected)


def test_the_ngram_branch_scores_a_text_by_the_mean_of_its_words_and_hashed_pairs() -> None:
    """Written out by hand for one text: 3 words and 2 pairs, each weighing 1/5."""
    model = with_branch(buckets=5)
    assert model.ngrams is not None
    words, pairs = model.ngrams.words.detach(), model.ngrams.pairs.detach()
    text = [5, 6, 7]
    expected = (
        words[5] + words[6] + words[7] + pairs[(5 * PRIME + 6) % 5] + pairs[(6 * PRIME + 7) % 5]
    ) / 5
    with torch.inference_mode():
        rnn, branch = model.parts(
            model.embedding(torch.tensor([text])), torch.tensor([3]), torch.tensor([text])
        )
        logits = model(*collate([text]))
    assert branch is not None
    torch.testing.assert_close(branch[0], expected)
    torch.testing.assert_close(logits, rnn + branch)


def test_an_unknown_word_and_its_pairs_score_nothing_but_count_in_the_mean() -> None:
    """<unk> (id 1) between two words: of its 3 words and 2 pairs only the two known words
    score, each still weighing 1/5, so a text the branch barely knows hears little from it."""
    model = with_branch(buckets=5)
    assert model.ngrams is not None
    words = model.ngrams.words.detach()
    text = [5, UNK_ID, 7]
    with torch.inference_mode():
        _, branch = model.parts(
            model.embedding(torch.tensor([text])), torch.tensor([3]), torch.tensor([text])
        )
    assert branch is not None
    torch.testing.assert_close(branch[0], (words[5] + words[7]) / 5)


def test_a_new_branch_starts_as_the_plain_rnn() -> None:
    """Zero scores at first: the branch adds what it learns to the RNN, not noise."""
    plain = model_of()

    branched = model_of(ngram_buckets=5, ngram_hashing=HASHING)
    with torch.inference_mode():
        torch.testing.assert_close(branched(*collate(SEQUENCES)), plain(*collate(SEQUENCES)))
