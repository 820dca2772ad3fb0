"""The model's life in one worker: load in the background, warm up, validate, predict, drain."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from serving.artifacts import ArtifactError, file_lock, materialize
from serving.batching import Batcher, expire
from serving.errors import BadRequest, Unavailable
from serving.metrics import Metrics
from serving.models.base import Model, Prediction
from serving.models.examples import example_rows
from serving.models.handler import Handler, load_handler
from serving.settings import OutputKind, Settings

log = logging.getLogger("ml_endpoints.runtime")

Observer = Callable[[np.ndarray, Prediction], None]
"""Called with the rows and the prediction of every successful model call."""
ReadyHook = Callable[[Model, Path | None], None]
"""Called once the model is loaded and warm, with the model and its directory."""
FailedHook = Callable[[str], None]
"""Called once the model failed to load for good, with the reason."""

#: Warm-up predictions slower than this run on a background thread, faster ones inline.
THREAD_THRESHOLD_SECONDS = 0.002


class State(StrEnum):
    """Where the worker is in its life."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"


class ModelRuntime:
    """Owns the model, its readiness and the batcher every protocol predicts through."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        observers: Sequence[Observer] = (),
        on_ready: Sequence[ReadyHook] = (),
        on_failed: Sequence[FailedHook] = (),
    ) -> None:
        """``observers`` see every successful model call: they run inside the batch loop (the
        event loop's thread, or the model thread for slow models), so they must only enqueue
        (O(1), thread-safe, never block, never raise) and do their real work elsewhere.
        ``on_ready`` and ``on_failed`` hooks run once on the event loop when the load ends; the
        same rules apply."""
        self.settings = settings
        self.metrics = metrics
        self.name = settings.model_name
        self.version = settings.model_version
        self.state = State.LOADING
        self.reason = "model is loading"
        self.model: Model | None = None
        self.handler: Handler | None = None
        self.model_dir: Path | None = None
        self.batcher: Batcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._observers = tuple(observers)
        self._on_ready = tuple(on_ready)
        self._on_failed = tuple(on_failed)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Begin loading in the background; the server accepts connections meanwhile."""
        self._task = asyncio.get_running_loop().create_task(self._load())

    async def wait_loaded(self) -> None:
        """Wait until the background load ends (ready or failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _load(self) -> None:
        started = time.perf_counter()
        try:
            model, handler, model_dir, warm_seconds = await _in_daemon_thread(self._load_blocking)
        except Exception as exc:
            self.state = State.FAILED
            self.reason = f"model failed to load: {type(exc).__name__}: {exc}"
            log.error(
                "%s",
                self.reason,
                exc_info=not isinstance(exc, FileNotFoundError | ValueError | ArtifactError),
            )
            _announce(self._on_failed, self.reason)
            return
        self.model, self.handler, self.model_dir = model, handler, model_dir
        threaded = warm_seconds > THREAD_THRESHOLD_SECONDS
        self.batcher = Batcher(
            functools.partial(_checked_predict, model.predict),
            max_batch_size=self.settings.max_batch_size,
            max_wait_us=self.settings.max_batch_wait_us,
            max_queue=self.settings.max_queue,
            timeout=self.settings.request_timeout,
            threaded=threaded,
            on_batch=self._count_batch,
            validate=self.validate,
            on_reject=self.metrics.rejections_child.inc,
        )
        elapsed = time.perf_counter() - started
        self.metrics.load_seconds.labels(*self.metrics.base).set(elapsed)
        # Everything alive now (model, libraries) lives as long as the worker: out of the garbage
        # collector's sight, a full collection scans only what requests allocate (~20 ms -> ~0).
        gc.freeze()
        if self.state is State.LOADING:
            self.state = State.READY
            self.reason = "ready"
            self.metrics.ready_child.set(1)
        log.info(
            "model %s:%s (%s) ready in %.2f s; warm-up predict %.3f ms, %s",
            self.name,
            self.version,
            model.format,
            elapsed,
            warm_seconds * 1e3,
            "model thread" if threaded else "inline",
        )
        _announce(self._on_ready, model, model_dir)

    def _load_blocking(self) -> tuple[Model, Handler | None, Path | None, float]:
        from serving.models.loader import find_model_file, load_model

        cache_dir = Path(self.settings.cache_dir)
        source = self.settings.model_source
        if source is None:
            log.info("no model configured: serving the bundled breast-cancer demo model")
            path = _demo_model_dir(cache_dir)
        else:
            path = materialize(source, cache_dir, expected_sha256=self.settings.model_sha256)
        model_dir = path if path.is_dir() else path.parent
        handler = load_handler(self.settings.handler, model_dir) if self.settings.handler else None
        self.handler = handler
        model: Model | None = None
        if self.settings.compile and handler is None:
            from serving.models.compiled import compilable, compile_cached

            model_file = find_model_file(path)
            if compilable(model_file):
                model = compile_cached(model_file, cache_dir)
        if model is None:
            model = load_model(path, handler, skops_trusted=self.settings.skops_trusted_types)
        warm_seconds = self._warm_up(model, model_dir)
        return model, handler, model_dir, warm_seconds

    def _warm_up(self, model: Model, model_dir: Path | None) -> float:
        """Predict once on an input example (or zeros); returns the best of a few timings."""
        rows = example_rows(model, model_dir)
        if rows is None:
            log.warning("no input example and unknown width: skipping warm-up predict")
            return 0.0
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            prediction = model.predict(rows[:1])
            best = min(best, time.perf_counter() - t0)
        if len(prediction) != 1:
            raise ValueError(f"warm-up: model returned {len(prediction)} predictions for 1 row")
        return best

    def begin_drain(self) -> None:
        """Shutdown begins: report not ready at once, keep serving what arrives."""
        if self.state is not State.DRAINING:
            self.state = State.DRAINING
            self.reason = "server is shutting down"
            self.metrics.ready_child.set(0)
            log.info("draining: readiness is now false")

    def close(self) -> None:
        """Release the model thread."""
        if self.batcher is not None:
            self.batcher.close()

    @property
    def feature_names(self) -> list[str] | None:
        """The loaded model's feature names (for rows sent as objects), if it has them."""
        return self.model.feature_names if self.model is not None else None

    @property
    def live(self) -> bool:
        """The process can make progress (a failed load cannot recover by itself)."""
        return self.state is not State.FAILED

    @property
    def ready(self) -> bool:
        """Model loaded, warm, and not shutting down."""
        return self.state is State.READY

    def require_ready(self) -> None:
        """Raise 503 with the reason unless ready."""
        if self.state is not State.READY:
            raise Unavailable(self.reason, retry_after=5 if self.state is State.LOADING else 1)

    # -- prediction -------------------------------------------------------------------------
    def predict(self, rows: np.ndarray) -> asyncio.Future[Prediction]:
        """Check the width of ``rows`` and queue them (batched with other requests); await the
        returned future for the prediction. Values are validated once per batch
        (:meth:`validate`, by the batcher); a request with bad values fails alone, with its own
        row numbers."""
        batcher = self.batcher
        if batcher is None or self.state is State.LOADING or self.state is State.FAILED:
            raise Unavailable(self.reason, retry_after=5 if self.state is State.LOADING else 1)
        self.check_width(rows)
        return batcher.submit(rows)

    def call_in_thread(self, function: Callable[[], _T]) -> asyncio.Future[_T]:
        """Run a blocking ``function`` (a user's pipeline) on a worker thread; the future fails
        with 504 once the per-request deadline passes (the thread is not interrupted).

        A plain future, not a task: prediction routes run without a current task
        (``serving.transport``)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[_T] = loop.create_future()

        def finish(work: asyncio.Future[_T]) -> None:
            deadline.cancel()
            if answer.done():
                return
            exc = work.exception()
            if exc is not None:
                answer.set_exception(exc)
            else:
                answer.set_result(work.result())

        deadline = loop.call_later(
            self.settings.request_timeout, expire, answer, self.settings.request_timeout
        )
        loop.run_in_executor(None, function).add_done_callback(finish)
        return answer

    def check_width(self, rows: np.ndarray) -> None:
        """Raise 400 unless ``rows`` have as many features as the model takes."""
        model = self.model
        assert model is not None
        width = model.n_features
        if width is not None and rows.shape[1] != width:
            raise BadRequest(f"expected {width} features per row, got {rows.shape[1]}")

    def validate(self, rows: np.ndarray) -> None:
        """Raise 400 for a wrong width or values the model cannot take."""
        self.check_width(rows)
        model = self.model
        assert model is not None
        if not np.isfinite(rows).all():
            bad = np.argwhere(~np.isfinite(rows))[0]
            value = rows[bad[0], bad[1]]
            if np.isnan(value) and model.allow_nan:
                if np.isinf(rows).any():
                    bad = np.argwhere(np.isinf(rows))[0]
                    raise BadRequest(
                        f"row {bad[0]}, feature {bad[1]} is infinite (or too large for a float)"
                    )
                return
            what = (
                "missing (null/NaN)" if np.isnan(value) else "infinite (or too large for a float)"
            )
            suffix = "; this model does not accept missing values" if np.isnan(value) else ""
            raise BadRequest(f"row {bad[0]}, feature {bad[1]} is {what}{suffix}")

    def instance_outputs(self, prediction: Prediction, output: OutputKind) -> list[Any]:
        """Per-row answers for instance-style protocols: labels or class probabilities."""
        return self.instance_array(prediction, output).tolist()  # type: ignore[no-any-return]

    @staticmethod
    def instance_array(prediction: Prediction, output: OutputKind) -> np.ndarray:
        """:meth:`instance_outputs` as the array itself (for ``.npy`` answers)."""
        if output is OutputKind.PROBABILITIES and prediction.probabilities is not None:
            return prediction.probabilities
        return prediction.outputs

    def _count_batch(self, rows: np.ndarray, prediction: Prediction) -> None:
        n = rows.shape[0]
        self.metrics.rows_child.inc(n)
        self.metrics.batch_child.observe(n)
        for observer in self._observers:
            try:
                observer(rows, prediction)
            except Exception:  # an observer must never fail a prediction
                log.exception("prediction observer %r failed", observer)


def _announce(hooks: Sequence[Callable[..., None]], *args: Any) -> None:
    """Call every hook; one that fails is logged and never stops the others or the worker."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            log.exception("model hook %r failed", hook)


def _checked_predict(predict: Callable[[np.ndarray], Prediction], rows: np.ndarray) -> Prediction:
    """``predict``, refusing NaN probabilities (overflow on far out-of-range input) with 400.

    Checked once per batch; the batcher then retries request by request, so only the request
    holding the offending row fails, with that request's own row number."""
    prediction = predict(rows)
    probabilities = prediction.probabilities
    if probabilities is not None and np.isnan(probabilities).any():
        row = int(np.argwhere(np.isnan(probabilities))[0, 0])
        raise BadRequest(
            f"row {row}: the model's probabilities are NaN (numeric overflow inside the "
            "model); its values are probably far outside the range the model was trained on"
        )
    return prediction


def _demo_model_dir(cache_dir: Path) -> Path:
    """The demo model's files, written once by a child process (keeps scikit-learn's training
    imports out of this worker when the model then runs on ONNX Runtime)."""
    import subprocess
    import sys

    target = cache_dir / "demo-model"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / "demo-model.lock"):
        if not (target / "drift_reference.json").exists():  # the last file the child writes
            subprocess.run(
                [sys.executable, "-m", "serving", "demo-model", "--out", str(target)],
                check=True,
                capture_output=True,
                timeout=300,
            )
    return target


_T = TypeVar("_T")


async def _in_daemon_thread(function: Callable[[], _T]) -> _T:
    """Run ``function`` on a daemon thread: shutdown (SIGTERM) never waits for a slow load."""
    result: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        try:
            result.set_result(function())
        except BaseException as exc:
            result.set_exception(exc)

    threading.Thread(target=run, name="model-load", daemon=True).start()
    return await asyncio.wrap_future(result)
