"""Settings: optional features nest inside ``Settings`` under their documented variables, with one
failure policy (an invalid value turns the feature off, saying why; the server still starts)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.settings import Settings

DRIFT = {
    "ML_ENDPOINTS_DRIFT_ENABLED": ("enabled", "false", False),
    "ML_ENDPOINTS_DRIFT_PROFILE": ("profile", "/models/ref.json", "/models/ref.json"),
    "ML_ENDPOINTS_DRIFT_ALPHA": ("alpha", "0.01", 0.01),
    "ML_ENDPOINTS_DRIFT_WINDOW_ROWS": ("window_rows", "500", 500),
    "ML_ENDPOINTS_DRIFT_WINDOW_SECONDS": ("window_seconds", "60", 60.0),
    "ML_ENDPOINTS_DRIFT_BUFFER_ROWS": ("buffer_rows", "2000", 2000),
    "ML_ENDPOINTS_DRIFT_REPORT_SECONDS": ("report_seconds", "0.5", 0.5),
}
CAPTURE = {
    "ML_ENDPOINTS_CAPTURE_DESTINATION": ("destination", "/var/capture", "/var/capture"),
    "ML_ENDPOINTS_CAPTURE_SAMPLE_PERCENT": ("sample_percent", "12.5", 12.5),
    "ML_ENDPOINTS_CAPTURE_MAX_FILE_BYTES": ("max_file_bytes", "4096", 4096),
    "ML_ENDPOINTS_CAPTURE_MAX_FILE_SECONDS": ("max_file_seconds", "30", 30.0),
    "ML_ENDPOINTS_CAPTURE_BUFFER_RECORDS": ("buffer_records", "10", 10),
}
SIGNALS = {
    "ML_ENDPOINTS_SIGNALS_MODE": ("mode", "emf", "emf"),
    "ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS": ("interval_seconds", "15", 15.0),
    "ML_ENDPOINTS_SIGNALS_NAMESPACE": ("namespace", "Churn/Prod", "Churn/Prod"),
}


def test_every_documented_variable_reaches_its_nested_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, (_, value, _) in {**DRIFT, **CAPTURE, **SIGNALS}.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("ML_ENDPOINTS_MAX_BATCH_SIZE", "8")  # a core setting beside them
    settings = Settings()
    for field, _, expected in DRIFT.values():
        assert getattr(settings.drift, field) == expected, field
    for field, _, expected in CAPTURE.values():
        assert getattr(settings.capture, field) == expected, field
    for field, _, expected in SIGNALS.values():
        assert getattr(settings.signals, field) == expected, field
    assert settings.max_batch_size == 8
    assert settings.drift.off_reason is None
    assert settings.capture.active
    assert not settings.drift.active  # ML_ENDPOINTS_DRIFT_ENABLED=false


def test_defaults_monitor_drift_and_capture_nothing() -> None:
    settings = Settings()
    assert settings.drift.active
    assert settings.drift.alpha == 0.05
    assert not settings.capture.active


def test_an_invalid_optional_setting_turns_only_that_feature_off_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ML_ENDPOINTS_DRIFT_WINDOW_ROWS", "5")
    monkeypatch.setenv("ML_ENDPOINTS_DRIFT_ALPHA", "0.2")  # valid, but the feature is off
    monkeypatch.setenv("ML_ENDPOINTS_CAPTURE_DESTINATION", "s3://")
    monkeypatch.setenv("ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS", "0.1")
    settings = Settings()
    assert not settings.drift.active
    assert settings.drift.off_reason == (
        "invalid ML_ENDPOINTS_DRIFT_WINDOW_ROWS='5': Input should be greater than or equal to 10"
    )
    assert not settings.capture.active
    assert settings.capture.off_reason is not None
    assert "ML_ENDPOINTS_CAPTURE_DESTINATION='s3://'" in settings.capture.off_reason
    assert "names no bucket" in settings.capture.off_reason
    assert settings.signals.off_reason == (
        "invalid ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS='0.1': Input should be greater than or "
        "equal to 1"
    )


def test_the_reason_travels_to_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_ENDPOINTS_CAPTURE_SAMPLE_PERCENT", "150")
    settings = Settings(model_name="churn")
    worker = Settings.model_validate_json(settings.model_dump_json())  # as serving.server does
    assert worker == settings
    assert worker.capture.off_reason is not None
    assert "ML_ENDPOINTS_CAPTURE_SAMPLE_PERCENT='150'" in worker.capture.off_reason


def test_an_invalid_core_setting_still_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_ENDPOINTS_MAX_BATCH_SIZE", "0")
    with pytest.raises(ValidationError, match="max_batch_size"):
        Settings()
