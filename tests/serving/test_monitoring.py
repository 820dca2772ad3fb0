"""Drift monitoring and data capture in the real server, over HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.demo import demo_data
from serving.drift import DriftProfile
from tests.conftest import ServerProcess

FAST = {
    "ML_ENDPOINTS_COMPILE": "false",
    "ML_ENDPOINTS_DRIFT_REPORT_SECONDS": "0.1",
    "ML_ENDPOINTS_DRAIN_SECONDS": "0",
}


def _model_dir(tmp_path: Path, demo_model_dir: Path, *, profile: bool) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    for name in ("model.joblib", "input_example.json"):
        shutil.copy(demo_model_dir / name, target)
    if profile:
        rows, _, names = demo_data()
        outputs = joblib.load(target / "model.joblib").predict(rows)
        DriftProfile.fit(rows, names, outputs=outputs).save(target / "drift_reference.json")
    return target


def _until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _gauges(server: ServerProcess) -> dict[tuple[str, str, str], float]:
    text = httpx.get(server.url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("model_drift") or sample.name.startswith("model_capture"):
                key = (sample.name, sample.labels.get("feature", ""), sample.labels.get("test", ""))
                out[key] = sample.value
    return out


def _predict(server: ServerProcess, rows: np.ndarray) -> None:
    for start in range(0, len(rows), 25):
        response = httpx.post(
            server.url + "/invocations", json={"instances": rows[start : start + 25].tolist()}
        )
        assert response.status_code == 200, response.text


def test_drift_report_gauges_log_and_capture_flush(
    tmp_path: Path, demo_model_dir: Path, start_server: Callable[..., ServerProcess]
) -> None:
    capture = tmp_path / "capture"
    env = {
        **FAST,
        "ML_ENDPOINTS_DRIFT_WINDOW_ROWS": "200",
        "ML_ENDPOINTS_DRIFT_ALPHA": "0.01",
        "ML_ENDPOINTS_CAPTURE_DESTINATION": str(capture),
        "ML_ENDPOINTS_CAPTURE_MAX_FILE_SECONDS": "3600",
    }
    server = start_server(
        "--model", str(_model_dir(tmp_path, demo_model_dir, profile=True)), env=env
    )
    _until(lambda: httpx.get(server.url + "/drift").status_code == 200, "the drift monitor")
    rows, _, _ = demo_data()
    clean = rows[np.random.default_rng(0).permutation(len(rows))[:200]]

    _predict(server, clean)
    report = _until(
        lambda: (r := httpx.get(server.url + "/drift").json())["window_rows"] == 200 and r,
        "200 rows in the window",
    )
    assert report["drift_detected"] is False
    assert report["drifted_features"] == []
    assert report["profile"].endswith("drift_reference.json")
    tests = {(t["feature"], t["test"]): t for t in report["tests"]}
    # 30 features + the prediction, each with its missing test, and the joint test
    assert len(tests) == 2 * 31 + 1
    assert set(tests["mean radius", "ks"]) >= {"statistic", "p_value", "effect_size", "drifted"}
    gauges = _until(
        lambda: (g := _gauges(server))[("model_drift_window_rows", "", "")] == 200 and g,
        "the gauges",
    )
    assert gauges[("model_drift_detected", "", "")] == 0
    assert gauges[("model_drift_p_value", "mean radius", "ks")] == pytest.approx(
        tests["mean radius", "ks"]["p_value"]
    )
    assert ("model_drift_statistic", "__prediction__", "categories") in gauges
    assert gauges[("model_drift_p_value", "__joint__", "joint")] == pytest.approx(
        tests["__joint__", "joint"]["p_value"]
    )
    assert gauges[("model_drift_statistic", "__joint__", "joint")] == pytest.approx(
        tests["__joint__", "joint"]["statistic"]
    )

    _predict(server, clean * 1.5)  # every feature rescaled: unmistakable drift
    report = _until(
        lambda: (r := httpx.get(server.url + "/drift").json())["drift_detected"] and r,
        "drift to be detected",
    )
    assert "mean radius" in report["drifted_features"]
    assert _until(lambda: _gauges(server)[("model_drift_detected", "", "")] == 1, "the gauge")
    assert _gauges(server)[("model_capture_dropped_records_total", "", "")] == 0

    assert server.stop() == 0  # SIGTERM: everything accepted must reach the disk
    assert "drift detected in a window of" in server.log()
    records = [json.loads(line) for p in capture.rglob("*.jsonl") for line in p.open()]
    assert len(records) == 400
    inputs = {r["captureData"]["endpointInput"]["data"] for r in records}
    assert ",".join(repr(v) for v in clean[0].tolist()) in inputs


def test_drift_route_explains_why_monitoring_is_off(
    tmp_path: Path, demo_model_dir: Path, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(
        "--model", str(_model_dir(tmp_path, demo_model_dir, profile=False)), env=FAST
    )
    response = _until(
        lambda: (r := httpx.get(server.url + "/drift")).status_code != 503 and r, "the monitor"
    )
    assert response.status_code == 404
    assert "drift_reference.json" in response.json()["error"]
    assert "ML_ENDPOINTS_DRIFT_PROFILE" in response.json()["error"]
    rows, _, _ = demo_data()
    _predict(server, rows[:50])  # predictions work without a profile


def test_the_demo_model_is_monitored_out_of_the_box(demo_server: ServerProcess) -> None:
    response = _until(
        lambda: (r := httpx.get(demo_server.url + "/drift", timeout=5)).status_code == 200 and r,
        "the demo drift profile",
        timeout=60,
    )
    document = response.json()
    assert document["profile"] == "demo data" or document["profile"].endswith(
        "drift_reference.json"
    )
    assert {t["feature"] for t in document["tests"]} >= {"mean radius", "__prediction__"}


def test_bad_settings_turn_the_feature_off_and_say_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from serving.compose import create_app
    from serving.settings import Settings

    monkeypatch.setenv("ML_ENDPOINTS_DRIFT_ALPHA", "2")
    monkeypatch.setenv("ML_ENDPOINTS_CAPTURE_DESTINATION", "/tmp/unused")
    monkeypatch.setenv("ML_ENDPOINTS_CAPTURE_SAMPLE_PERCENT", "150")
    app = create_app(Settings())

    async def drift_and_metrics() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # scopes as dict
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/drift"), await client.get("/metrics")

    drift, metrics = asyncio.run(drift_and_metrics())
    assert drift.status_code == 404  # drift monitoring is off, and says why
    assert "ML_ENDPOINTS_DRIFT_ALPHA='2'" in drift.json()["error"]
    assert "model_capture_records" not in metrics.text  # data capture is off
    assert "ML_ENDPOINTS_DRIFT_ALPHA='2': Input should be less than 1" in caplog.text
    assert "ML_ENDPOINTS_CAPTURE_SAMPLE_PERCENT='150'" in caplog.text
    app.close()


# -- in-process: the runtime's hooks drive the monitor's state ------------------------------------
def _monitoring(**settings: Any) -> Any:
    from prometheus_client import CollectorRegistry

    from serving.monitoring import DriftMonitoring
    from serving.settings import DriftSettings

    return DriftMonitoring(
        DriftSettings(**settings), registry=CollectorRegistry(), labels=("m", "1", "default")
    )


def _drift_answer(monitoring: Any) -> tuple[int, str]:
    from serving.errors import ServingError
    from serving.http import Request

    [route] = monitoring.routes()
    try:
        response = asyncio.run(route.handler(Request("GET", "/drift", [])))
    except ServingError as exc:
        return exc.status, exc.message
    return response.status, response.body.decode()


def test_the_monitor_waits_for_the_ready_hook_then_reports(
    tmp_path: Path, demo_model_dir: Path
) -> None:
    from serving.models.loader import load_model
    from serving.monitoring import DriftState

    monitoring = _monitoring(report_seconds=0.05)
    assert monitoring.state is DriftState.WAITING
    assert _drift_answer(monitoring)[0] == 503
    model_dir = _model_dir(tmp_path, demo_model_dir, profile=True)
    monitoring.model_ready(load_model(model_dir / "model.joblib"), model_dir)
    _until(lambda: monitoring.state is DriftState.ON, "the monitor to start", timeout=10)
    status, body = _drift_answer(monitoring)
    assert status == 200
    assert json.loads(body)["profile"] == str(model_dir / "drift_reference.json")
    monitoring.close()


def test_a_failed_load_turns_the_monitor_off_and_says_why() -> None:
    from serving.monitoring import DriftState

    monitoring = _monitoring()
    monitoring.model_failed("model failed to load: FileNotFoundError: nothing at /nowhere")
    assert monitoring.state is DriftState.OFF
    assert _drift_answer(monitoring) == (404, "drift monitoring is off: the model failed to load")


def test_a_disabled_monitor_never_starts() -> None:
    from serving.monitoring import DriftState

    monitoring = _monitoring(enabled=False)
    monitoring.model_ready(object(), None)  # type: ignore[arg-type]  # never looked at
    assert monitoring.state is DriftState.OFF
    assert _drift_answer(monitoring) == (
        404,
        "drift monitoring is off: ML_ENDPOINTS_DRIFT_ENABLED=false",
    )
