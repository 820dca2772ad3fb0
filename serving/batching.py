"""Adaptive micro-batching: requests that arrive together share one vectorised model call.

Requests queue while the model is busy; each flush takes everything queued (up to
``max_batch_size`` rows) in one call. Under light load a request runs alone at once; under heavy
load batches grow by themselves. ``max_wait_us`` > 0 additionally holds a partial batch that long.
Rows are validated once per batch (``validate``); a batch that fails validation or prediction
is taken apart so that one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from serving.errors import DeadlineExceeded, ModelError, ServingError, Unavailable
from serving.models.base import Prediction

log = logging.getLogger("ml_endpoints.batching")

PredictFn = Callable[[np.ndarray], Prediction]
ValidateFn = Callable[[np.ndarray], None]


class _Pending:
    __slots__ = ("deadline", "future", "rows")

    def __init__(
        self, rows: np.ndarray, future: asyncio.Future[Prediction], deadline: float
    ) -> None:
        self.rows = rows
        self.future = future
        self.deadline = deadline


class Batcher:
    """Queue rows, run ``predict`` on merged batches, hand each request its own slice.

    ``threaded`` runs the model on one background thread so that the event loop stays responsive
    (health checks, parsing) while a slow model computes; fast models run inline, which is cheaper.
    """

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int = 64,
        max_wait_us: int = 0,
        max_queue: int = 1024,
        timeout: float = 55.0,
        threaded: bool = False,
        on_batch: Callable[[np.ndarray, Prediction], None] | None = None,
        validate: ValidateFn | None = None,
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self._predict = predict
        self._validate = validate
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_us / 1e6
        self.max_queue = max_queue
        self.timeout = timeout
        self._queue: deque[_Pending] = deque()
        self._scheduled = False
        self._busy = False
        self._executor = ThreadPoolExecutor(1, "predict") if threaded else None
        self._on_batch = on_batch
        self._on_reject = on_reject
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def queued(self) -> int:
        """Requests waiting for the model."""
        return len(self._queue)

    def submit(self, rows: np.ndarray) -> asyncio.Future[Prediction]:
        """Queue ``rows``; the future resolves to their prediction. Raises
        :class:`Unavailable` at once when the queue is full (``on_reject`` counts it).

        A plain function returning the future (not a coroutine): the caller awaits the future
        directly, which saves a coroutine frame per request on the hot path."""
        if len(self._queue) >= self.max_queue:
            if self._on_reject is not None:
                self._on_reject()
            raise Unavailable(
                f"server overloaded: {len(self._queue)} requests queued (limit {self.max_queue}); "
                "retry shortly"
            )
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[Prediction] = loop.create_future()
        self._queue.append(_Pending(rows, future, loop.time() + self.timeout))
        if not self._scheduled and not self._busy:
            self._scheduled = True
            if self.max_wait > 0:
                loop.call_later(self.max_wait, self._flush)
            else:
                loop.call_soon(self._flush)
        return future

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        queue = self._queue
        now = self._loop.time() if self._loop is not None else 0.0
        while queue:
            item = queue[0]
            if item.future.done():  # cancelled while queued (client gone): skip the work
                queue.popleft()
                continue
            if item.deadline <= now:
                queue.popleft()
                expire(item.future, self.timeout)
                continue
            if batch and rows + item.rows.shape[0] > self.max_batch_size:
                break
            queue.popleft()
            batch.append(item)
            rows += item.rows.shape[0]
        return batch

    def _flush(self) -> None:
        self._scheduled = False
        batch = self._take()
        if not batch:
            return
        if self._executor is None:
            self._deliver(batch, self._run(batch))
            self._reschedule()
        else:
            self._busy = True
            assert self._loop is not None
            task = self._loop.run_in_executor(self._executor, self._run, batch)
            task.add_done_callback(lambda fut: self._after_thread(batch, fut))
            # A stuck model must not hold requests past their deadline: a watchdog per batch.
            watchdog = self._loop.call_at(
                min(item.deadline for item in batch), self._expire_overdue, batch
            )
            task.add_done_callback(lambda _: watchdog.cancel())

    def _expire_overdue(self, batch: list[_Pending]) -> None:
        """Fail every request (running or queued) whose deadline has passed."""
        assert self._loop is not None
        now = self._loop.time()
        for item in (*batch, *self._queue):
            if item.deadline <= now:
                expire(item.future, self.timeout)
        pending = [item.deadline for item in (*batch, *self._queue) if not item.future.done()]
        if pending and self._busy:
            self._loop.call_at(min(pending), self._expire_overdue, batch)

    def _after_thread(
        self, batch: list[_Pending], fut: asyncio.Future[list[Prediction | BaseException]]
    ) -> None:
        self._busy = False
        exc = fut.exception()
        self._deliver(batch, exc if exc is not None else fut.result())
        self._reschedule()

    def _reschedule(self) -> None:
        if self._queue and not self._scheduled and not self._busy:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _run(self, batch: list[_Pending]) -> list[Prediction | BaseException]:
        """Validate and predict a batch; a request whose rows fail validation fails alone (the
        others are predicted together), and on a model failure each request is retried alone."""
        rows = batch[0].rows if len(batch) == 1 else np.concatenate([i.rows for i in batch])
        if self._invalid(rows) is None:
            return self._predict_valid(batch, rows)
        failures = [self._invalid(item.rows) for item in batch]
        valid = [item for item, failed in zip(batch, failures, strict=True) if failed is None]
        answers = iter(self._predict_valid(valid) if valid else [])
        return [next(answers) if failed is None else failed for failed in failures]

    def _predict_valid(
        self, batch: list[_Pending], rows: np.ndarray | None = None
    ) -> list[Prediction | BaseException]:
        """Predict validated requests in one call (``rows``: theirs, merged, if at hand)."""
        if len(batch) == 1:
            return [self._call(batch[0].rows)]
        merged = self._call(np.concatenate([i.rows for i in batch]) if rows is None else rows)
        if isinstance(merged, BaseException):
            return [self._call(item.rows) for item in batch]
        out: list[Prediction | BaseException] = []
        start = 0
        for item in batch:
            stop = start + item.rows.shape[0]
            out.append(merged.rows(start, stop))
            start = stop
        return out

    def _invalid(self, rows: np.ndarray) -> ServingError | None:
        """The validation error of ``rows``, if any."""
        if self._validate is None:
            return None
        try:
            self._validate(rows)
        except ServingError as exc:
            return exc
        return None

    def _call(self, rows: np.ndarray) -> Prediction | BaseException:
        try:
            prediction = self._predict(rows)
        except ServingError as exc:
            return exc
        except Exception as exc:
            log.exception("model failed on a batch of %d rows", rows.shape[0])
            return ModelError(f"model failed: {type(exc).__name__}: {exc}")
        if len(prediction) != rows.shape[0]:
            return ModelError(
                f"model returned {len(prediction)} predictions for {rows.shape[0]} rows"
            )
        if self._on_batch is not None:
            self._on_batch(rows, prediction)
        return prediction

    @staticmethod
    def _deliver(
        batch: list[_Pending], results: list[Prediction | BaseException] | BaseException
    ) -> None:
        for i, item in enumerate(batch):
            if item.future.done():
                continue
            result = results if isinstance(results, BaseException) else results[i]
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def close(self) -> None:
        """Stop the model thread (queued requests are expected to have finished)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def expire(future: asyncio.Future[Any], timeout: float) -> None:
    """Fail ``future`` with 504 for missing the ``timeout``-second deadline, unless it is done."""
    if not future.done():
        future.set_exception(
            DeadlineExceeded(f"prediction did not finish within the {timeout:g} s deadline")
        )
