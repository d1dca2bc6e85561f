"""The queue and the batch runner on their own, in both places a forward pass can run (a
dedicated thread, the event loop)."""

import asyncio

import numpy as np
import pytest

from app.batching.queue import TextQueue
from app.batching.runner import Runner, make_runner
from app.engines.choice import warm_up
from app.errors import ClientGone, Overloaded
from app.version_metrics import VersionMetrics

BOTH_RUNNERS = pytest.mark.parametrize("on_event_loop", [False, True], ids=["thread", "loop"])


class RecordingEngine:
    """A stand-in forward pass whose answer identifies its input: row = [first id, length]."""

    name = "recording"
    device = "cpu"

    def __init__(self) -> None:
        self.batches: list[list[list[int]]] = []

    def predict(self, sequences: list[list[int]]) -> np.ndarray:
        self.batches.append(sequences)
        return np.array([[seq[0], len(seq)] for seq in sequences], dtype=np.float32)


def runner_for(
    engine: RecordingEngine, on_event_loop: bool, max_batch_size: int = 64, **queue: float
) -> Runner:
    limits: dict[str, float] = {"max_batch_tokens": 1000, "max_queue_texts": 1000, **queue}
    text_queue = TextQueue(
        max_batch_size,
        int(limits.pop("max_batch_tokens")),
        int(limits.pop("max_queue_texts")),
        **limits,
    )
    return make_runner(text_queue, engine, on_event_loop, VersionMetrics("queue-test", "1"))


async def run(runner: Runner, requests: list[list[list[int]]]) -> list[np.ndarray]:
    runner.start()
    try:
        return list(await asyncio.gather(*(runner.submit(r) for r in requests)))
    finally:
        runner.stop()


@BOTH_RUNNERS
def test_each_request_gets_its_own_rows_in_order(on_event_loop: bool) -> None:
    engine = RecordingEngine()
    runner = runner_for(engine, on_event_loop, max_batch_size=3)
    requests = [[[i * 10 + j] * (j + 1) for j in range(i % 5 + 1)] for i in range(20)]
    answers = asyncio.run(run(runner, requests))
    for request, answer in zip(requests, answers, strict=True):
        assert answer.tolist() == [[seq[0], len(seq)] for seq in request]
    assert all(len(batch) <= 3 for batch in engine.batches)
    # Texts of concurrent requests share forward passes: far fewer passes than requests' texts.
    assert len(engine.batches) < sum(len(r) for r in requests)


@BOTH_RUNNERS
def test_padded_token_budget_bounds_each_batch(on_event_loop: bool) -> None:
    engine = RecordingEngine()
    runner = runner_for(engine, on_event_loop, max_batch_tokens=40)
    requests = [[[1] * length] for length in [3, 20, 5, 9, 1, 17, 2, 40, 6] * 4]
    asyncio.run(run(runner, requests))
    for batch in engine.batches:
        assert len(batch) == 1 or len(batch) * max(map(len, batch)) <= 40


def test_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        runner = runner_for(RecordingEngine(), True, max_batch_size=4, max_queue_texts=5)
        first = asyncio.ensure_future(runner.submit([[1]] * 5))
        await asyncio.sleep(0)  # queued, not yet run: the flush is scheduled after this
        with pytest.raises(Overloaded):
            await runner.submit([[2]])
        assert (await first).shape == (5, 2)
        assert (await runner.submit([[3]])).tolist() == [[3, 1]]  # served again after the burst

    asyncio.run(scenario())


@BOTH_RUNNERS
def test_texts_of_a_client_that_went_away_never_reach_the_model(on_event_loop: bool) -> None:
    engine = RecordingEngine()

    async def scenario() -> None:
        runner = runner_for(engine, on_event_loop, max_batch_size=8)
        runner.start()
        try:
            gone = runner.submit([[666]] * 3, client_gone=lambda: True)
            kept = runner.submit([[7]])
            results = await asyncio.gather(gone, kept, return_exceptions=True)
        finally:
            runner.stop()
        assert isinstance(results[0], ClientGone)
        assert results[1].tolist() == [[7, 1]]

    asyncio.run(scenario())
    assert all(seq[0] != 666 for batch in engine.batches for seq in batch)


@BOTH_RUNNERS
def test_max_wait_collects_texts_that_arrive_one_by_one_into_one_batch(
    on_event_loop: bool,
) -> None:
    """MAX_WAIT_MS: a new arrival does not end the wait early; only a full batch does."""
    engine = RecordingEngine()

    async def scenario() -> None:
        runner = runner_for(engine, on_event_loop, max_batch_size=3, max_wait_s=30.0)
        runner.start()
        try:
            pending = []
            for i in range(3):
                pending.append(asyncio.ensure_future(runner.submit([[i]])))
                await asyncio.sleep(0.05)  # each arrives while the runner waits
            # The third filled the batch: it runs now, not 30 s later.
            await asyncio.wait_for(asyncio.gather(*pending), 10)
        finally:
            runner.stop()

    asyncio.run(scenario())
    assert engine.batches == [[[0], [1], [2]]]


@BOTH_RUNNERS
def test_max_wait_runs_a_partial_batch_at_the_deadline(on_event_loop: bool) -> None:
    engine = RecordingEngine()

    async def scenario() -> None:
        runner = runner_for(engine, on_event_loop, max_batch_size=8, max_wait_s=0.2)
        runner.start()
        try:
            await asyncio.wait_for(asyncio.gather(runner.submit([[1]]), runner.submit([[2]])), 10)
        finally:
            runner.stop()

    asyncio.run(scenario())
    assert engine.batches == [[[1], [2]]]


def test_estimated_wait_over_max_queue_time_is_refused_with_retry_after() -> None:
    queue = TextQueue(8, 1000, 10_000, max_queue_s=0.5)
    queue.record_batch(texts=10, seconds=0.1)  # measured: 10 ms per text
    runner = make_runner(queue, RecordingEngine(), True, VersionMetrics("queue-test", "1"))

    async def scenario() -> None:
        first = asyncio.ensure_future(runner.submit([[1]] * 40))  # ~0.4 s of work: admitted
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="MAX_QUEUE_MS=500") as refused:
            await runner.submit([[2]] * 20)  # would wait ~0.6 s
        assert refused.value.retry_after_s == 1  # the 40 queued texts take ~0.4 s: retry in 1 s
        assert (await first).shape == (40, 2)

    asyncio.run(scenario())


def test_warm_up_runs_mixed_lengths_and_the_largest_batch() -> None:
    """The first real mixed-length batch must not pay the packed path's one-off costs."""
    engine = RecordingEngine()
    warm_up(engine, max_batch_size=48, max_length=40)
    sizes = [len(batch) for batch in engine.batches]
    assert max(sizes) == 48
    assert any(len({len(row) for row in batch}) > 1 for batch in engine.batches)
    assert max(len(row) for batch in engine.batches for row in batch) == 40


@BOTH_RUNNERS
def test_a_deep_queue_batches_texts_of_similar_length_starting_from_the_oldest(
    on_event_loop: bool,
) -> None:
    engine = RecordingEngine()
    runner = runner_for(engine, on_event_loop, max_batch_size=4)
    lengths = [7, 1, 30, 8, 2, 29, 9, 3, 31, 6, 28, 2]
    # One request of 12 texts: all queued at once, three batches' worth.
    requests = [[[position + 1] * length for position, length in enumerate(lengths)]]
    (answer,) = asyncio.run(run(runner, requests))
    assert answer.tolist() == [[position + 1, length] for position, length in enumerate(lengths)]
    first = engine.batches[0]
    assert first[0] == [1] * 7  # the oldest text leads the first batch
    # ... with its neighbours in length, not the next three in the queue (lengths 1, 30, 8).
    assert sorted(map(len, first)) == [6, 7, 8, 9]
    spread = [max(map(len, b)) - min(map(len, b)) for b in engine.batches]
    assert max(spread) <= 3, [list(map(len, b)) for b in engine.batches]
