"""Adaptive micro-batching: merging, isolation of bad requests, overload, deadlines."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from serving.batching import Batcher
from serving.errors import BadRequest, DeadlineExceeded, ModelError, Unavailable
from serving.models.base import Prediction

POISON = -999.0


class RecordingModel:
    """Doubles its input; fails on any batch holding a POISON value; records batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, rows: np.ndarray) -> Prediction:
        self.batches.append(rows.shape[0])
        if (rows == POISON).any():
            raise ValueError("poisoned row")
        return Prediction(rows[:, 0] * 2)


def rows(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 3), value)


def test_concurrent_requests_share_one_model_call() -> None:
    model = RecordingModel()

    async def scenario() -> list[Prediction]:
        batcher = Batcher(model.predict, max_batch_size=64)
        return await asyncio.gather(*(batcher.submit(rows(float(i))) for i in range(10)))

    results = asyncio.run(scenario())
    assert model.batches == [10]
    assert [float(r.outputs[0]) for r in results] == [2.0 * i for i in range(10)]


def test_batches_never_exceed_max_batch_size_in_rows() -> None:
    model = RecordingModel()

    async def scenario() -> None:
        batcher = Batcher(model.predict, max_batch_size=8)
        await asyncio.gather(*(batcher.submit(rows(1.0, n=3)) for i in range(6)))

    asyncio.run(scenario())
    assert sum(model.batches) == 18
    assert max(model.batches) <= 8


def test_a_bad_request_fails_only_itself() -> None:
    model = RecordingModel()

    async def scenario() -> list[Prediction | BaseException]:
        batcher = Batcher(model.predict)
        values = [1.0, 2.0, POISON, 4.0]
        return await asyncio.gather(
            *(batcher.submit(rows(v)) for v in values), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert isinstance(results[2], ModelError)
    assert "poisoned row" in results[2].message
    assert [float(r.outputs[0]) for r in results if isinstance(r, Prediction)] == [2.0, 4.0, 8.0]


def reject_negatives(rows: np.ndarray) -> None:
    if (rows < 0).any():
        raise BadRequest(f"row {int(np.argwhere(rows < 0)[0, 0])} is negative")


def test_invalid_rows_fail_only_their_request_and_the_rest_stay_one_batch() -> None:
    model = RecordingModel()

    async def scenario() -> list[Prediction | BaseException]:
        batcher = Batcher(model.predict, validate=reject_negatives)
        requests = [rows(1.0), np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 2.0]]), rows(3.0, n=2)]
        requests += [rows(-5.0), rows(4.0)]
        return await asyncio.gather(*map(batcher.submit, requests), return_exceptions=True)

    results = asyncio.run(scenario())
    assert model.batches == [4], "the valid requests are still predicted together"
    assert isinstance(results[1], BadRequest)
    assert results[1].message == "row 1 is negative", "row numbers are the request's own"
    assert isinstance(results[3], BadRequest)
    assert results[3].message == "row 0 is negative"
    outputs = [r.outputs.tolist() for r in results if isinstance(r, Prediction)]
    assert outputs == [[2.0], [6.0, 6.0], [8.0]]


def test_a_batch_with_only_invalid_requests_calls_no_model() -> None:
    model = RecordingModel()

    async def scenario() -> list[Prediction | BaseException]:
        batcher = Batcher(model.predict, validate=reject_negatives)
        return await asyncio.gather(
            *(batcher.submit(rows(-1.0)) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert model.batches == []
    assert all(isinstance(r, BadRequest) for r in results)


def test_wrong_number_of_predictions_is_a_model_error() -> None:
    async def scenario() -> None:
        batcher = Batcher(lambda r: Prediction(np.zeros(r.shape[0] + 1)))
        await batcher.submit(rows(1.0))

    with pytest.raises(ModelError, match="returned 2 predictions for 1 rows"):
        asyncio.run(scenario())


def test_full_queue_answers_503_at_once() -> None:
    release = threading.Event()

    def slow(r: np.ndarray) -> Prediction:
        release.wait(5)
        return Prediction(r[:, 0])

    async def scenario() -> None:
        batcher = Batcher(slow, max_queue=2, threaded=True)
        first = asyncio.ensure_future(batcher.submit(rows(1.0)))
        await asyncio.sleep(0.05)  # first is now running on the model thread
        queued = [asyncio.ensure_future(batcher.submit(rows(2.0))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Unavailable, match="overloaded"):
            await batcher.submit(rows(3.0))
        release.set()
        await asyncio.gather(first, *queued)
        batcher.close()

    asyncio.run(scenario())


def test_each_request_refused_for_a_full_queue_is_counted_where_it_is_refused() -> None:
    release = threading.Event()
    refused: list[int] = []

    def slow(r: np.ndarray) -> Prediction:
        release.wait(5)
        return Prediction(r[:, 0])

    async def scenario() -> None:
        batcher = Batcher(
            slow, max_queue=1, threaded=True, on_reject=lambda: refused.append(batcher.queued)
        )
        first = asyncio.ensure_future(batcher.submit(rows(1.0)))
        await asyncio.sleep(0.05)  # running on the model thread: the queue is empty again
        queued = asyncio.ensure_future(batcher.submit(rows(2.0)))
        for _ in range(3):
            with pytest.raises(Unavailable):
                batcher.submit(rows(3.0))
        release.set()
        await asyncio.gather(first, queued)
        await batcher.submit(rows(4.0))  # room again: accepted, not counted
        batcher.close()

    asyncio.run(scenario())
    assert refused == [1, 1, 1]


def test_a_stuck_model_cannot_hold_requests_past_their_deadline() -> None:
    release = threading.Event()

    def stuck(r: np.ndarray) -> Prediction:
        release.wait(10)
        return Prediction(r[:, 0])

    async def scenario() -> None:
        batcher = Batcher(stuck, timeout=0.2, threaded=True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(
            batcher.submit(rows(1.0)), batcher.submit(rows(2.0)), return_exceptions=True
        )
        elapsed = loop.time() - started
        release.set()
        batcher.close()
        assert all(isinstance(r, DeadlineExceeded) for r in results), results
        assert elapsed < 1.0

    asyncio.run(scenario())
