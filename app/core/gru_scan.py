"""A one-layer GRU over a padded batch as a few tensor ops per step, both directions at once.

Training time goes to the recurrent layer's per-step work. On the CPU, torch's GRU over packed
sequences runs each direction's steps on their own, a dozen small ops a step (slicing the packed
batch, two matmuls, the gates), and autograd records each of them, so at training's batch sizes
the op count, not the arithmetic, sets its speed. Here the input projections of every step are one
matmul, and a step of both directions is one batched matmul and five elementwise ops. (A
hand-written backward pass, one autograd node a step, was tried: slower, its Python ops cost more
than autograd's own.)

The reverse direction reads each text from its last real word back: every text is reversed
within its length first, so both directions read real words from step 0 and padding only after a
text's end, where the states are never read (the pooling masks them). The function is the one
torch's GRU computes (`tests/unit/test_gru_scan.py` checks outputs and gradients against it).
"""

import torch
from torch import nn


def _stacked(rnn: nn.GRU, name: str) -> torch.Tensor:
    """One of the GRU's weights, its directions stacked: [directions, ...]."""
    suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
    return torch.stack([getattr(rnn, f"{name}_l0{suffix}") for suffix in suffixes])


def within_length_reversed(embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T, E] with each text's first `lengths[b]` steps in reverse order, padding in place."""
    steps = torch.arange(embedded.shape[1], device=embedded.device)
    ends = lengths.to(embedded.device).unsqueeze(1)
    source = torch.where(steps < ends, ends - 1 - steps, steps)
    return embedded.gather(1, source.unsqueeze(-1).expand_as(embedded))


def gru_states(rnn: nn.GRU, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The hidden state after every step of a one-layer GRU: [B, T, E] -> [D, B, T, H].

    Direction 1 (when bidirectional) holds its states in its reading order: at step t, the state
    after reading words L-1 down to L-1-t of a text of length L. Steps at and after L are
    undefined. Pooling over the real steps (max, mean, the last) does not depend on the order."""
    if rnn.num_layers != 1 or not rnn.bias or not rnn.batch_first:
        raise ValueError("the scan covers one-layer, batch-first GRUs with biases")
    batch, steps, features = embedded.shape
    hidden = rnn.hidden_size
    inputs = [embedded]
    if rnn.bidirectional:
        inputs.append(within_length_reversed(embedded, lengths))
    directions = len(inputs)
    # Time-major, so each step's slice of the projections is contiguous.
    by_step = torch.stack(inputs).transpose(1, 2).reshape(directions, steps * batch, features)
    projected = torch.baddbmm(
        _stacked(rnn, "bias_ih").unsqueeze(1), by_step, _stacked(rnn, "weight_ih").transpose(1, 2)
    ).view(directions, steps, batch, 3 * hidden)
    weight_hh = _stacked(rnn, "weight_hh").transpose(1, 2)
    bias_hh = _stacked(rnn, "bias_hh").unsqueeze(1)
    state = embedded.new_zeros(directions, batch, hidden)
    states = []
    # unbind, not indexing: autograd then stacks the steps' gradients once, where indexing would
    # write each into a zero-filled copy of the whole tensor.
    for step in projected.unbind(1):
        gates = torch.baddbmm(bias_hh, state, weight_hh)
        step_rz, step_n = torch.split(step, [2 * hidden, hidden], -1)
        gates_rz, gates_n = torch.split(gates, [2 * hidden, hidden], -1)
        reset, update = torch.sigmoid(step_rz + gates_rz).chunk(2, -1)
        candidate = torch.tanh(step_n + reset * gates_n)
        state = torch.lerp(candidate, state, update)  # (1 - z) * n + z * h
        states.append(state)
    return torch.stack(states, 2)
