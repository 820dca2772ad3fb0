"""Data capture: SageMaker's record format, sampling, rotation, drops, S3 upload, flush."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter

from serving.capture import DataCapture
from serving.models.base import Prediction
from serving.settings import CaptureSettings
from tests.conftest import free_port


class Captured:
    """A DataCapture with its own metrics registry."""

    def __init__(self, **settings: object) -> None:
        self.registry = CollectorRegistry()
        self.capture = DataCapture(
            CaptureSettings(**settings),  # type: ignore[arg-type]
            model="m",
            variant="blue",
            records=Counter("records", "", registry=self.registry),
            dropped=Counter("dropped", "", registry=self.registry),
        )

    def value(self, name: str) -> float:
        return self.registry.get_sample_value(f"{name}_total") or 0.0


def _lines(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for p in sorted(root.rglob("*.jsonl")) for line in p.open()]


def test_records_have_every_field_of_the_sagemaker_format(tmp_path: Path) -> None:
    c = Captured(destination=str(tmp_path))
    before = datetime.now(UTC).replace(microsecond=0)
    rows = np.array([[1.5, 2.0], [np.nan, -3.25]])
    c.capture.observe(rows, Prediction(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])))
    c.capture.close()
    (path,) = tmp_path.rglob("*.jsonl")
    relative = path.relative_to(tmp_path).parts
    assert relative[:2] == ("m", "blue")
    assert len(relative) == 7
    assert datetime.strptime("/".join(relative[2:6]), "%Y/%m/%d/%H").year == before.year
    first, second = _lines(tmp_path)
    assert set(first) == {"captureData", "eventMetadata", "eventVersion"}
    assert first["eventVersion"] == "0"
    assert first["captureData"] == {
        "endpointInput": {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "data": "1.5,2.0",
            "encoding": "CSV",
        },
        "endpointOutput": {
            "observedContentType": "text/csv",
            "mode": "OUTPUT",
            "data": "0",
            "encoding": "CSV",
        },
    }
    assert second["captureData"]["endpointInput"]["data"] == ",-3.25"  # type: ignore[index]
    meta = first["eventMetadata"]
    assert isinstance(meta, dict)
    assert set(meta) == {"eventId", "inferenceTime"}
    uuid.UUID(meta["eventId"])
    stamp = datetime.strptime(meta["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)
    assert c.value("records") == 2
    assert c.value("dropped") == 0


def test_sampling_keeps_the_configured_share(tmp_path: Path) -> None:
    c = Captured(destination=str(tmp_path), sample_percent=20)
    for _ in range(50):
        c.capture.observe(np.zeros((100, 1)), Prediction(np.zeros(100)))
    c.capture.close()
    kept = len(_lines(tmp_path))
    assert abs(kept - 1000) < 4 * np.sqrt(5000 * 0.2 * 0.8)
    assert c.value("records") == kept


def test_files_rotate_by_size(tmp_path: Path) -> None:
    c = Captured(destination=str(tmp_path), max_file_bytes=2048)
    for _ in range(40):
        c.capture.observe(np.ones((1, 4)), Prediction(np.ones(1)))
    c.capture.close()
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) >= 5
    record = max(len(line) for p in files for line in p.read_bytes().splitlines(keepends=True))
    assert all(p.stat().st_size < 2048 + record for p in files)
    assert len(_lines(tmp_path)) == 40


def test_files_rotate_by_age(tmp_path: Path) -> None:
    c = Captured(destination=str(tmp_path), max_file_seconds=0.2)
    c.capture.observe(np.ones((1, 2)), Prediction(np.ones(1)))
    time.sleep(0.6)
    c.capture.observe(np.ones((1, 2)), Prediction(np.ones(1)))
    c.capture.close()
    assert len(list(tmp_path.rglob("*.jsonl"))) == 2


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    c = Captured(destination=str(tmp_path), buffer_records=5)
    c.capture.observe(np.ones((10, 2)), Prediction(np.ones(10)))  # more than the buffer holds
    c.capture.observe(np.ones((3, 2)), Prediction(np.ones(3)))
    c.capture.close()
    c.capture.observe(np.ones((2, 2)), Prediction(np.ones(2)))  # after close: dropped too
    assert c.value("dropped") == 12
    assert c.value("records") == 3 == len(_lines(tmp_path))


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moto_server`` on 127.0.0.1; yields its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited: {log.read_text()}")
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"moto_server not ready in 30 s: {log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_s3_destination_uploads_each_file(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="capture")
    c = Captured(destination="s3://capture/endpoint-a", max_file_bytes=4096)
    staging = c.capture._sink._root  # where files wait for upload
    for _ in range(60):
        c.capture.observe(np.ones((1, 3)), Prediction(np.zeros(1)))
    c.capture.close()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="capture")["Contents"]]
    assert len(keys) >= 2
    assert all(k.startswith("endpoint-a/m/blue/") for k in keys)
    assert all(k.endswith(".jsonl") and len(k.split("/")) == 8 for k in keys)
    bodies = [s3.get_object(Bucket="capture", Key=k)["Body"].read() for k in keys]
    records = [json.loads(line) for body in bodies for line in body.splitlines()]
    assert len(records) == 60 == c.value("records")
    assert records[0]["captureData"]["endpointInput"]["data"] == "1.0,1.0,1.0"
    assert not any(staging.rglob("*.jsonl")), "uploaded files must not stay on local disk"


def test_bad_destination_is_refused() -> None:
    with pytest.raises(ValueError, match="names no bucket"):
        Captured(destination="s3://")
