"""Drift monitoring and data capture, wired into a running server.

``attach(app)`` registers one prediction observer that only appends to bounded buffers; background
threads do the work. Drift monitoring starts once the model is ready, with the first profile
found of: ``ML_ENDPOINTS_DRIFT_PROFILE`` or ``drift_reference.json`` in the model directory (the
bundled demo model's directory has one). ``GET /drift`` returns this worker's current
report; gauges carry every feature's statistic and p-value.

With several workers (``PROMETHEUS_MULTIPROC_DIR``) each worker tests its own share of the
traffic, and every drift gauge uses ``livemostrecent``: the exposition shows the latest report of
any live worker, which is a valid level-alpha test (summing or taking the max over workers would
multiply the false alarm rate by the number of workers). Counters are summed over workers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import numpy as np
from prometheus_client import Counter, Gauge
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving import contract
from serving.capture import CaptureSettings, DataCapture
from serving.errors import NotFound, Unavailable
from serving.http import Request, Response, Route, json_response
from serving.models.base import Prediction

if TYPE_CHECKING:
    from serving.app import ServingApp
    from serving.drift import DriftMonitor, DriftProfile, DriftReport

log = logging.getLogger("ml_endpoints.monitoring")
_S = TypeVar("_S", bound=BaseSettings)

PROFILE_FILE = "drift_reference.json"
#: Buffered rows that wake the monitor thread early; fewer wait for its periodic drain, so the
#: serving thread pays one append per batch and the counting runs in vectorised chunks. Not more:
#: counting holds the GIL (~3 ms per 1024 rows of 30 features), and a long count makes the serving
#: thread wait in 5 ms switch-interval slices for its whole length, which shows in p99 latency.
WAKE_ROWS = 1024


class DriftSettings(BaseSettings):
    """``ML_ENDPOINTS_DRIFT_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="ML_ENDPOINTS_DRIFT_")

    enabled: bool = True
    profile: str | None = Field(None, description=f"Profile path (default: {PROFILE_FILE}).")
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    window_rows: Annotated[int, Field(ge=10)] = 1000
    window_seconds: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Roll windows by time instead of by rows."
    )
    buffer_rows: Annotated[int, Field(ge=1)] = 100_000
    report_seconds: Annotated[float, Field(gt=0)] = 1.0


class Monitoring:
    """The server's drift monitor and data capture; :meth:`close` at shutdown."""

    def __init__(self, app: ServingApp, drift: DriftSettings, capture: CaptureSettings) -> None:
        self._app = app
        self.settings = drift
        base_labels = ["model", "version", "variant"]
        reg = app.metrics.registry
        base = app.metrics.base
        self._detected = Gauge(
            contract.DRIFT_DETECTED_METRIC,
            "1 when the latest drift report found drift (family-wise level alpha).",
            base_labels,
            multiprocess_mode="livemostrecent",
            registry=reg,
        ).labels(*base)
        self._window_rows = Gauge(
            "model_drift_window_rows",
            "Rows in the latest drift report's window.",
            base_labels,
            multiprocess_mode="livemostrecent",
            registry=reg,
        ).labels(*base)
        self._statistic = Gauge(
            "model_drift_statistic",
            "Drift test statistic per feature and test (ks, categories, missing).",
            [*base_labels, "feature", "test"],
            multiprocess_mode="livemostrecent",
            registry=reg,
        )
        self._p_value = Gauge(
            "model_drift_p_value",
            "Drift test p-value per feature and test.",
            [*base_labels, "feature", "test"],
            multiprocess_mode="livemostrecent",
            registry=reg,
        )
        self._dropped = Counter(
            "model_drift_dropped_rows",
            "Predicted rows the drift monitor skipped because its buffer was full.",
            base_labels,
            registry=reg,
        ).labels(*base)
        self._buffer: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._pending = 0
        self._lock = threading.Lock()  # guards _pending only: held for one integer update
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.monitor: DriftMonitor | None = None
        self.profile_source: str | None = None
        self.status = "waiting for the model to load"
        self._drifted: bool | None = None
        self.capture: DataCapture | None = None
        if capture.destination:
            self.capture = DataCapture(
                capture,
                model=app.settings.model_name,
                variant=app.settings.variant,
                records=Counter(
                    "model_capture_records",
                    "Captured request/response records written.",
                    base_labels,
                    registry=reg,
                ).labels(*base),
                dropped=Counter(
                    "model_capture_dropped_records",
                    "Sampled records dropped because the capture buffer was full.",
                    base_labels,
                    registry=reg,
                ).labels(*base),
            )
        self._thread: threading.Thread | None = None
        if drift.enabled:
            self._thread = threading.Thread(target=self._run, name="drift-monitor", daemon=True)
            self._thread.start()
        else:
            self.status = (
                "drift monitoring is off: ML_ENDPOINTS_DRIFT_ENABLED=false or an invalid "
                "ML_ENDPOINTS_DRIFT_* setting (see the log)"
            )

    # -- hot path ---------------------------------------------------------------------------
    def observe(self, rows: np.ndarray, prediction: Prediction) -> None:
        """The prediction observer: O(1) appends, never blocks, never raises."""
        if self.capture is not None:
            self.capture.observe(rows, prediction)
        if self.monitor is None:
            return
        n = rows.shape[0]
        with self._lock:
            accepted = self._pending + n <= self.settings.buffer_rows
            if accepted:
                self._pending += n
        if not accepted:
            self._dropped.inc(n)
            return
        self._buffer.append((rows, prediction.outputs))
        if self._pending >= WAKE_ROWS:  # else the thread drains every report_seconds, in bulk
            self._wake.set()

    # -- GET /drift -------------------------------------------------------------------------
    async def drift_route(self, _: Request) -> Response:
        """This worker's current drift report."""
        monitor = self.monitor
        if monitor is None:
            if self.status.startswith("waiting"):
                raise Unavailable(f"drift monitor is {self.status}", retry_after=5)
            raise NotFound(self.status)
        document = monitor.report().to_dict()
        document["profile"] = self.profile_source
        document["worker_pid"] = os.getpid()
        return json_response(document)

    # -- background thread ------------------------------------------------------------------
    def _run(self) -> None:
        runtime = self._app.runtime
        while not self._stop.is_set() and runtime.model is None:
            if runtime.state.value == "failed":
                self.status = "off: the model failed to load"
                return
            self._stop.wait(0.1)
        if self._stop.is_set():
            return
        try:
            self._start_monitor()
        except Exception as exc:
            self.status = f"off: {type(exc).__name__}: {exc}"
            log.error("drift monitoring %s", self.status)
            return
        published = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.settings.report_seconds)
            self._wake.clear()
            try:
                self._drain()
                # a report (~2 ms of statistics) once per report_seconds, however often the
                # buffer wakes the thread
                if time.monotonic() - published >= self.settings.report_seconds:
                    published = time.monotonic()
                    self._publish()
            except Exception:  # e.g. a handler's outputs that do not fit; keep monitoring
                log.exception("drift monitor: could not process a batch")

    def _start_monitor(self) -> None:
        from serving.drift import DriftMonitor

        profile, source = self._find_profile()
        if profile is None:
            self.status = (
                f"off: no {PROFILE_FILE} in the model directory and "
                "ML_ENDPOINTS_DRIFT_PROFILE is not set"
            )
            log.info("drift monitoring %s", self.status)
            return
        width = self._app.runtime.model.n_features if self._app.runtime.model else None
        if width is not None and width != profile.n_features:
            raise ValueError(
                f"drift profile {source} has {profile.n_features} features, the model takes {width}"
            )
        s = self.settings
        window: int | timedelta = (
            timedelta(seconds=s.window_seconds) if s.window_seconds else s.window_rows
        )
        self.profile_source = source
        self.monitor = DriftMonitor(profile, alpha=s.alpha, window=window)
        self.status = "on"
        log.info(
            "drift monitoring on: %d features from %s, window %s, alpha %g",
            profile.n_features,
            source,
            window,
            s.alpha,
        )

    def _find_profile(self) -> tuple[DriftProfile | None, str | None]:
        from serving.drift import DriftProfile

        runtime = self._app.runtime
        if self.settings.profile:
            return DriftProfile.load(self.settings.profile), self.settings.profile
        if runtime.model_dir is not None and (runtime.model_dir / PROFILE_FILE).is_file():
            path = runtime.model_dir / PROFILE_FILE
            return DriftProfile.load(path), str(path)
        return None, None

    def _drain(self) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        batches = []
        while self._buffer:
            batches.append(self._buffer.popleft())
        if not batches:
            return
        with self._lock:
            self._pending -= sum(b[0].shape[0] for b in batches)
        rows = np.concatenate([b[0] for b in batches])
        outputs = np.concatenate([np.asarray(b[1]).reshape(len(b[0]), -1) for b in batches])
        monitor.update(rows, outputs)

    def _publish(self) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        report = monitor.report()
        base = self._app.metrics.base
        for test in report.tests:
            self._statistic.labels(*base, test.feature, test.test).set(test.statistic)
            self._p_value.labels(*base, test.feature, test.test).set(test.p_value)
        self._detected.set(1 if report.drift_detected else 0)
        self._window_rows.set(report.window_rows)
        self._log_change(report)

    def _log_change(self, report: DriftReport) -> None:
        if report.drift_detected == self._drifted:
            return
        if report.drift_detected:
            log.warning(
                "drift detected in a window of %d rows: %s",
                report.window_rows,
                ", ".join(report.drifted_features),
            )
        elif self._drifted is not None:
            log.info("drift cleared: no drift in a window of %d rows", report.window_rows)
        self._drifted = report.drift_detected

    def close(self) -> None:
        """Stop the drift thread and flush captured records (called at shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.capture is not None:
            self.capture.close()


def attach(app: ServingApp) -> Monitoring:
    """Wire drift monitoring, ``GET /drift`` and data capture into ``app``.

    A bad ``ML_ENDPOINTS_DRIFT_*`` or ``ML_ENDPOINTS_CAPTURE_*`` setting turns that feature off
    with an error in the log; the model is still served.
    """
    drift, capture = (
        _settings(DriftSettings, "drift monitoring"),
        _settings(CaptureSettings, "data capture"),
    )
    try:
        monitoring = Monitoring(app, drift or _OFF_DRIFT, capture or _OFF_CAPTURE)
    except ValueError as exc:  # e.g. an s3:// capture destination without boto3
        log.error("data capture is off: %s", exc)
        monitoring = Monitoring(app, drift or _OFF_DRIFT, _OFF_CAPTURE)
    app.runtime.add_observer(monitoring.observe)
    app.router.add(Route("GET", contract.DRIFT_PATH, monitoring.drift_route))
    return monitoring


_OFF_DRIFT = DriftSettings.model_construct(enabled=False)  # no environment read
_OFF_CAPTURE = CaptureSettings.model_construct(destination=None)


def _settings(kind: type[_S], what: str) -> _S | None:
    try:
        return kind()
    except ValidationError as exc:
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            prefix = kind.model_config.get("env_prefix", "")
            log.error(
                "%s is off: %s%s=%r: %s",
                what,
                prefix,
                key.upper(),
                error.get("input"),
                error["msg"],
            )
        return None


__all__ = ["PROFILE_FILE", "DriftSettings", "Monitoring", "attach"]
