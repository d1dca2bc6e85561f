"""The batcher on its own, in both places a forward pass can run (thread, event loop)."""

import asyncio

import numpy as np
import pytest

from app.batcher import Batcher, ClientGone, Overloaded


class RecordingModel:
    """A stand-in forward pass whose answer identifies its input: row = [first id, length]."""

    def __init__(self) -> None:
        self.batches: list[list[list[int]]] = []

    def __call__(self, sequences: list[list[int]]) -> np.ndarray:
        self.batches.append(sequences)
        return np.array([[seq[0], len(seq)] for seq in sequences], dtype=np.float32)


async def run(batcher: Batcher, requests: list[list[list[int]]]) -> list[np.ndarray]:
    batcher.start()
    try:
        return list(await asyncio.gather(*(batcher.submit(r) for r in requests)))
    finally:
        batcher.stop()


@pytest.mark.parametrize("on_event_loop", [False, True])
def test_each_request_gets_its_own_rows_in_order(on_event_loop: bool) -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_batch_size=3, max_batch_tokens=100, max_queue_texts=100,
                      on_event_loop=on_event_loop)  # fmt: skip
    requests = [[[i * 10 + j] * (j + 1) for j in range(i % 5 + 1)] for i in range(20)]
    answers = asyncio.run(run(batcher, requests))
    for request, answer in zip(requests, answers, strict=True):
        assert answer.tolist() == [[seq[0], len(seq)] for seq in request]
    assert all(len(batch) <= 3 for batch in model.batches)
    # Texts of concurrent requests share forward passes: far fewer passes than requests' texts.
    assert len(model.batches) < sum(len(r) for r in requests)


@pytest.mark.parametrize("on_event_loop", [False, True])
def test_padded_token_budget_bounds_each_batch(on_event_loop: bool) -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_batch_size=64, max_batch_tokens=40, max_queue_texts=1000,
                      on_event_loop=on_event_loop)  # fmt: skip
    requests = [[[1] * length] for length in [3, 20, 5, 9, 1, 17, 2, 40, 6] * 4]
    asyncio.run(run(batcher, requests))
    for batch in model.batches:
        assert len(batch) == 1 or len(batch) * max(map(len, batch)) <= 40


def test_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        batcher = Batcher(RecordingModel(), max_batch_size=4, max_batch_tokens=100,
                          max_queue_texts=5, on_event_loop=True)  # fmt: skip
        first = asyncio.ensure_future(batcher.submit([[1]] * 5))
        await asyncio.sleep(0)  # queued, not yet run: the flush is scheduled after this
        with pytest.raises(Overloaded):
            await batcher.submit([[2]])
        assert (await first).shape == (5, 2)
        assert (await batcher.submit([[3]])).tolist() == [[3, 1]]  # served again after the burst

    asyncio.run(scenario())


@pytest.mark.parametrize("on_event_loop", [False, True])
def test_texts_of_a_client_that_went_away_never_reach_the_model(on_event_loop: bool) -> None:
    model = RecordingModel()

    async def scenario() -> None:
        batcher = Batcher(model, max_batch_size=8, max_batch_tokens=100, max_queue_texts=100,
                          on_event_loop=on_event_loop)  # fmt: skip
        batcher.start()
        try:
            gone = batcher.submit([[666]] * 3, client_gone=lambda: True)
            kept = batcher.submit([[7]])
            results = await asyncio.gather(gone, kept, return_exceptions=True)
        finally:
            batcher.stop()
        assert isinstance(results[0], ClientGone)
        assert results[1].tolist() == [[7, 1]]

    asyncio.run(scenario())
    assert all(seq[0] != 666 for batch in model.batches for seq in batch)
