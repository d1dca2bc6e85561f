"""Training's GRU scan (app/core/gru_scan.py) computes what torch's packed GRU computes: the
features it pools and their gradients, for every pooling, in one and both directions."""

import pytest
import torch
from torch import nn

from app.core.gru_scan import gru_states
from app.core.network import RNNClassifier, collate
from tests.unit.test_network import SEQUENCES, model_of


def features_and_gradients(
    model: RNNClassifier, training: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """encode's features of SEQUENCES (dropout off) and the gradients of a loss on them."""
    model.train(training)
    ids, lengths = collate(SEQUENCES)
    features = model.encode(model.embedding(ids), lengths)
    # A loss that weighs every feature differently, so a feature out of place shows.
    weights = torch.linspace(-1.0, 2.0, features.numel()).view_as(features)
    gradients = torch.autograd.grad(
        (features * weights).sum(), [*model.embedding.parameters(), *model.rnn.parameters()]
    )
    return features.detach(), list(gradients)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "max_mean"])
def test_training_encodes_as_the_packed_gru_serves(bidirectional: bool, pooling: str) -> None:
    model = model_of(rnn_type="gru", bidirectional=bidirectional, pooling=pooling)
    served, served_gradients = features_and_gradients(model, training=False)
    trained, trained_gradients = features_and_gradients(model, training=True)
    torch.testing.assert_close(trained, served, atol=1e-6, rtol=0)
    for trained_gradient, served_gradient in zip(trained_gradients, served_gradients, strict=True):
        torch.testing.assert_close(trained_gradient, served_gradient, atol=1e-5, rtol=1e-5)


def test_the_reverse_direction_starts_at_each_texts_last_word() -> None:
    """A text's reverse states do not depend on the padding after it: the same text alone and
    padded in a batch with a longer one gets the same states on its real steps."""
    torch.manual_seed(0)
    rnn = nn.GRU(4, 3, batch_first=True, bidirectional=True)
    text = torch.randn(1, 3, 4)
    batch = torch.cat([torch.cat([text, torch.randn(1, 2, 4)], dim=1), torch.randn(1, 5, 4)])
    alone = gru_states(rnn, text, torch.tensor([3]))
    padded = gru_states(rnn, batch, torch.tensor([3, 5]))
    torch.testing.assert_close(padded[:, :1, :3], alone, atol=1e-6, rtol=0)


def test_the_scan_refuses_what_it_does_not_cover() -> None:
    with pytest.raises(ValueError, match="one-layer"):
        gru_states(
            nn.GRU(4, 3, num_layers=2, batch_first=True), torch.zeros(1, 2, 4), torch.tensor([2])
        )
