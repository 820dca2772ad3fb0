"""Data capture: sampled request/response records in SageMaker Model Monitor's format.

Every captured row becomes one JSON Lines record::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "17.99,10.38,...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-01-01T00:00:00Z"},
     "eventVersion": "0"}

Rows are captured as the model saw them (after decoding, one record per row: the batcher merges
requests, and per-row CSV is what Model Monitor's analyzers read). Files are written under
``{destination}/{model}/{variant}/yyyy/mm/dd/hh/`` like SageMaker's, rotated by size and age;
an ``s3://`` destination stages files locally and uploads each one when it is rotated.

The observer only samples and appends to a bounded buffer; a background thread encodes and
writes. A full buffer drops records and counts them (``model_capture_dropped_records``);
:meth:`DataCapture.close` writes (and uploads) everything that was accepted.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry, Counter

from serving.models.base import Prediction
from serving.settings import CaptureSettings

log = logging.getLogger("ml_endpoints.capture")


def create_capture(
    settings: CaptureSettings,
    *,
    model: str,
    variant: str,
    registry: CollectorRegistry,
    labels: tuple[str, str, str],
) -> DataCapture | None:
    """Data capture with its counters in ``registry`` (``labels``: model, version, variant), or
    ``None`` when it is off (no destination, or an invalid setting: ``settings.off_reason``)."""
    if not settings.active:
        return None
    names = ["model", "version", "variant"]
    return DataCapture(
        settings,
        model=model,
        variant=variant,
        records=Counter(
            "model_capture_records",
            "Captured request/response records written.",
            names,
            registry=registry,
        ).labels(*labels),
        dropped=Counter(
            "model_capture_dropped_records",
            "Sampled records dropped because the capture buffer was full.",
            names,
            registry=registry,
        ).labels(*labels),
    )


class DataCapture:
    """Samples predicted rows into a bounded buffer; a thread writes them as JSON Lines."""

    def __init__(
        self,
        settings: CaptureSettings,
        *,
        model: str,
        variant: str,
        records: Counter,
        dropped: Counter,
    ) -> None:
        if not settings.destination:
            raise ValueError("capture needs a destination (ML_ENDPOINTS_CAPTURE_DESTINATION)")
        self.settings = settings
        self._fraction = settings.sample_percent / 100.0
        self._sink = _Sink(settings.destination, f"{model}/{variant}")
        self._records = records
        self._dropped = dropped
        self._buffer: deque[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = deque()
        self._pending = 0
        self._pending_lock = threading.Lock()  # held for one integer update, never waited on
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    # -- hot path (inside the batch loop) ---------------------------------------------------
    def observe(self, rows: np.ndarray, prediction: Prediction) -> None:
        """Sample rows of one model call into the buffer; never blocks, never raises."""
        n = rows.shape[0]
        if self._fraction >= 1.0:
            picked = np.arange(n)
        else:
            picked = np.flatnonzero(np.random.random(n) < self._fraction)
            if picked.size == 0:
                return
        with self._pending_lock:
            accepted = (
                not self._closing and self._pending + picked.size <= self.settings.buffer_records
            )
            if accepted:
                self._pending += picked.size
        if not accepted:
            self._dropped.inc(picked.size)
            return
        self._buffer.append((rows, prediction.outputs, picked, time.time()))
        self._wake.set()

    # -- writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=min(1.0, self.settings.max_file_seconds))
            self._wake.clear()
            self._drain()
            self._sink.flush()  # readers of the local file see every record written so far
            if self._closing and not self._buffer:
                break
            self._sink.rotate_if(self.settings.max_file_bytes, self.settings.max_file_seconds)
        self._sink.close()

    def _drain(self) -> None:
        while self._buffer:
            rows, outputs, picked, when = self._buffer.popleft()
            try:
                lines = b"".join(_record(rows[i], outputs[i], when) for i in picked.tolist())
                self._sink.write(lines, when)
                self._sink.rotate_if(self.settings.max_file_bytes, self.settings.max_file_seconds)
                self._records.inc(picked.size)
            except Exception:  # a broken disk or bucket must not stop the server
                log.exception("data capture: could not write %d records", picked.size)
                self._dropped.inc(picked.size)
            finally:
                with self._pending_lock:
                    self._pending -= picked.size

    def close(self, timeout: float = 20.0) -> None:
        """Stop accepting, write and upload everything accepted, then return."""
        with self._pending_lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("data capture: writer did not finish within %.0f s", timeout)


def _record(row: np.ndarray, output: Any, when: float) -> bytes:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = np.atleast_1d(output)
    document = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": ",".join(_csv(v) for v in row.tolist()),
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv",
                "mode": "OUTPUT",
                "data": ",".join(_csv(v) for v in values.tolist()),
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": stamp},
        "eventVersion": "0",
    }
    return orjson.dumps(document) + b"\n"


def _csv(value: Any) -> str:
    if isinstance(value, float):
        return "" if value != value else repr(value)  # NaN = empty CSV field
    return str(value)


class _Sink:
    """The current JSON Lines file; rotates to a new one, uploading closed files to S3."""

    def __init__(self, destination: str, prefix: str) -> None:
        self._s3: tuple[str, str] | None = None
        if destination.startswith("s3://"):
            import boto3  # the [aws] extra (CaptureSettings checks that it is installed)

            bucket, _, key = destination.removeprefix("s3://").partition("/")
            self._s3 = (bucket, "/".join(p for p in (key.strip("/"), prefix) if p))
            self._root = Path(tempfile.mkdtemp(prefix="ml-endpoints-capture-"))
            self._client: Any = boto3.client("s3")
        else:
            self._root = Path(destination) / prefix
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._size = 0

    def write(self, lines: bytes, when: float) -> None:
        if self._file is None:
            self._open(when)
        assert self._file is not None
        self._file.write(lines)
        self._size += len(lines)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def rotate_if(self, max_bytes: int, max_seconds: float) -> None:
        if self._file is not None and (
            self._size >= max_bytes or time.monotonic() - self._opened >= max_seconds
        ):
            self._finish()

    def close(self) -> None:
        self._finish()

    def _open(self, when: float) -> None:
        stamp = datetime.fromtimestamp(when, UTC)
        relative = Path(stamp.strftime("%Y/%m/%d/%H")) / (
            f"{stamp.strftime('%M-%S-%f')}-{uuid.uuid4().hex[:8]}.jsonl"
        )
        self._path = self._root / relative
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._path.open("ab")
        self._opened = time.monotonic()
        self._size = 0

    def _finish(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.close()
        self._file = None
        if self._s3 is not None:
            bucket, prefix = self._s3
            key = f"{prefix}/{self._path.relative_to(self._root).as_posix()}"
            try:
                self._client.upload_file(str(self._path), bucket, key)
            except Exception:
                log.exception(
                    "data capture: upload to s3://%s/%s failed; kept %s", bucket, key, self._path
                )
                return
            self._path.unlink()
            log.debug("data capture: uploaded s3://%s/%s", bucket, key)
