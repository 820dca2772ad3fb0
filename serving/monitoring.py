"""Drift monitoring in a running server: a bounded buffer on the hot path, a background thread
that counts, tests and publishes, and ``GET /drift``.

Built by the composition root (``serving.compose``) from what it uses: its settings, a metrics
registry and the model's labels. The model runtime's hooks start it: :meth:`model_ready` starts
the thread, with the first profile found of ``ML_ENDPOINTS_DRIFT_PROFILE`` or
``drift_reference.json`` in the model directory (the bundled demo model's directory has one);
:meth:`model_failed` turns it off. ``GET /drift`` returns this worker's current report; gauges
carry every feature's statistic and p-value.

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
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from serving import contract
from serving.errors import NotFound, Unavailable
from serving.http import Request, Response, Route, json_response
from serving.models.base import Model, Prediction
from serving.openapi import JSON, Operation, ref
from serving.settings import PROFILE_FILE, DriftSettings

if TYPE_CHECKING:
    from serving.drift import DriftMonitor, DriftProfile, DriftReport

log = logging.getLogger("ml_endpoints.monitoring")

#: Buffered rows that wake the monitor thread early; fewer wait for its periodic drain, so the
#: serving thread pays one append per batch and the counting runs in vectorised chunks. Not more:
#: counting holds the GIL (~3 ms per 1024 rows of 30 features), and a long count makes the serving
#: thread wait in 5 ms switch-interval slices for its whole length, which shows in p99 latency.
WAKE_ROWS = 1024

REPORT_DOC = Operation(
    "This worker's current drift report.", {JSON: ref("DriftReport")}, errors=(404, 503)
)


class DriftState(StrEnum):
    """Where this worker's drift monitor is."""

    WAITING = "waiting"  # for the model to load (then for its profile)
    ON = "on"
    OFF = "off"


class DriftMonitoring:
    """The server's drift monitor: :meth:`observe` on the hot path, hooks from the runtime,
    :meth:`routes` to serve, :meth:`close` at shutdown."""

    def __init__(
        self,
        settings: DriftSettings,
        *,
        registry: CollectorRegistry,
        labels: tuple[str, str, str],
    ) -> None:
        self.settings = settings
        self._labels = labels
        names = ["model", "version", "variant"]
        self._detected = Gauge(
            contract.DRIFT_DETECTED_METRIC,
            "1 when the latest drift report found drift (family-wise level alpha).",
            names,
            multiprocess_mode="livemostrecent",
            registry=registry,
        ).labels(*labels)
        self._window_rows = Gauge(
            contract.DRIFT_WINDOW_ROWS_METRIC,
            "Rows in the latest drift report's window.",
            names,
            multiprocess_mode="livemostrecent",
            registry=registry,
        ).labels(*labels)
        self._statistic = Gauge(
            "model_drift_statistic",
            "Drift test statistic per feature and test (ks, categories, missing).",
            [*names, "feature", "test"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._p_value = Gauge(
            contract.DRIFT_P_VALUE_METRIC,
            "Drift test p-value per feature and test.",
            [*names, "feature", "test"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._dropped = Counter(
            "model_drift_dropped_rows",
            "Predicted rows the drift monitor skipped because its buffer was full.",
            names,
            registry=registry,
        ).labels(*labels)
        self._buffer: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._pending = 0
        self._lock = threading.Lock()  # guards _pending only: held for one integer update
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.monitor: DriftMonitor | None = None
        self.profile_source: str | None = None
        self._drifted: bool | None = None
        if settings.off_reason is not None:
            self._status = (DriftState.OFF, settings.off_reason)
        elif not settings.enabled:
            self._status = (DriftState.OFF, "ML_ENDPOINTS_DRIFT_ENABLED=false")
        else:
            self._status = (DriftState.WAITING, "waiting for the model to load")

    @property
    def state(self) -> DriftState:
        """Waiting, on or off."""
        return self._status[0]

    @property
    def reason(self) -> str:
        """Why the monitor is in its state (what it waits for, why it is off)."""
        return self._status[1]

    def routes(self) -> list[Route]:
        """``GET /drift``."""
        return [Route("GET", contract.DRIFT_PATH, self._report, doc=REPORT_DOC)]

    # -- hot path ---------------------------------------------------------------------------
    def observe(self, rows: np.ndarray, prediction: Prediction) -> None:
        """The prediction observer: O(1) appends, never blocks, never raises."""
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

    # -- the runtime's hooks (on the event loop: O(1), never raise) -------------------------
    def model_ready(self, model: Model, model_dir: Path | None) -> None:
        """The model is loaded: start the thread, which finds the profile and monitors."""
        if self.state is not DriftState.WAITING or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(model.n_features, model_dir), name="drift-monitor", daemon=True
        )
        self._thread.start()

    def model_failed(self, _reason: str) -> None:
        """The model can never load: nothing to monitor."""
        if self.state is DriftState.WAITING:
            self._status = (DriftState.OFF, "the model failed to load")

    # -- GET /drift -------------------------------------------------------------------------
    async def _report(self, _: Request) -> Response:
        """This worker's current drift report."""
        monitor = self.monitor
        if monitor is None:
            state, reason = self._status
            if state is DriftState.WAITING:
                raise Unavailable(f"drift monitor is {reason}", retry_after=5)
            raise NotFound(f"drift monitoring is off: {reason}")
        document = monitor.report().to_dict()
        document["profile"] = self.profile_source
        document["worker_pid"] = os.getpid()
        return json_response(document)

    # -- background thread ------------------------------------------------------------------
    def _run(self, width: int | None, model_dir: Path | None) -> None:
        try:
            self._start_monitor(width, model_dir)
        except Exception as exc:
            self._status = (DriftState.OFF, f"{type(exc).__name__}: {exc}")
            log.error("drift monitoring is off: %s", self.reason)
            return
        published = 0.0
        while self.monitor is not None and not self._stop.is_set():
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

    def _start_monitor(self, width: int | None, model_dir: Path | None) -> None:
        from serving.drift import DriftMonitor

        profile, source = self._find_profile(model_dir)
        if profile is None:
            self._status = (
                DriftState.OFF,
                f"no {PROFILE_FILE} in the model directory and "
                "ML_ENDPOINTS_DRIFT_PROFILE is not set",
            )
            log.info("drift monitoring is off: %s", self.reason)
            return
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
        self._status = (DriftState.ON, "on")
        log.info(
            "drift monitoring on: %d features from %s, window %s, alpha %g",
            profile.n_features,
            source,
            window,
            s.alpha,
        )

    def _find_profile(self, model_dir: Path | None) -> tuple[DriftProfile | None, str | None]:
        from serving.drift import DriftProfile

        if self.settings.profile:
            return DriftProfile.load(self.settings.profile), self.settings.profile
        if model_dir is not None and (model_dir / PROFILE_FILE).is_file():
            path = model_dir / PROFILE_FILE
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
        labels = self._labels
        for test in report.tests:
            self._statistic.labels(*labels, test.feature, test.test).set(test.statistic)
            self._p_value.labels(*labels, test.feature, test.test).set(test.p_value)
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
        """Stop the drift thread (called at shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)


__all__ = ["PROFILE_FILE", "DriftMonitoring", "DriftState"]
