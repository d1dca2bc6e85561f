"""Training batches: every text once per epoch, reproducible from the seed, and with
--length-batches batches whose texts are of similar length; and the weight average each step
updates."""

import torch
from torch.optim.swa_utils import AveragedModel

from training.batching import shuffled_batches
from training.fit import warmed_up_ema


def _lengths(n: int = 3000) -> torch.Tensor:
    return torch.randint(1, 41, (n,), generator=torch.Generator().manual_seed(0))


def test_each_epoch_holds_every_text_once_in_batches_of_the_size_asked() -> None:
    lengths = _lengths()
    for by_length in (False, True):
        batches = shuffled_batches(lengths, 32, torch.Generator().manual_seed(1), by_length)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        assert sorted(len(b) for b in batches)[1:] == [32] * (len(batches) - 1)


def test_the_same_seed_gives_the_same_batches_and_epochs_differ() -> None:
    lengths = _lengths()
    for by_length in (False, True):
        generator = torch.Generator().manual_seed(7)
        first = shuffled_batches(lengths, 32, generator, by_length)
        second = shuffled_batches(lengths, 32, generator, by_length)
        again = shuffled_batches(lengths, 32, torch.Generator().manual_seed(7), by_length)
        assert first == again
        assert first != second


def test_length_batches_cut_the_recurrent_steps_a_batch_costs() -> None:
    lengths = _lengths()

    def steps(by_length: bool) -> int:  # a batch takes as many steps as its longest text
        batches = shuffled_batches(lengths, 32, torch.Generator().manual_seed(3), by_length)
        return sum(int(lengths[b].max()) for b in batches)

    assert steps(True) < 0.7 * steps(False)


def test_the_weight_average_follows_its_warm_up_ramp_on_every_tensor() -> None:
    """The averaged weights after each step are averaged + (current - averaged) * (1 - rate),
    rate = min(decay, (1 + n) / (10 + n)): the first steps follow the model closely."""
    model = torch.nn.Linear(3, 2)
    averaged = AveragedModel(model, avg_fn=warmed_up_ema(0.9))
    expected = [p.detach().clone() for p in model.parameters()]
    averaged.update_parameters(model)  # the first update copies
    for step in range(1, 40):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        rate = min(0.9, (1 + step) / (10 + step))
        expected = [
            e + (p.detach() - e) * (1 - rate)
            for e, p in zip(expected, model.parameters(), strict=True)
        ]
        averaged.update_parameters(model)
    for got, want in zip(averaged.module.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
