"""Fixtures for reliability tests: the real server on the demo model behind a handler whose
service time is fixed, so that capacity does not depend on how busy the machine is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

#: Every model call sleeps ``TEST_SERVICE_SECONDS``; that also makes the server run the model on
#: its model thread, as it does for any model slower than a couple of milliseconds.
HANDLER = """
import os
import time

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    time.sleep(float(os.environ["TEST_SERVICE_SECONDS"]))
    return model.predict(data)
"""

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_timed(
    start_server: StartServer, demo_model_dir: Path, tmp_path: Path
) -> Callable[..., ServerProcess]:
    """Start the demo model behind :data:`HANDLER`: ``start_timed(*flags, service=s, **env)``."""
    handler = tmp_path / "timed_handler.py"
    handler.write_text(HANDLER)

    def run(*args: str, service: float = 0.003, **env: str) -> ServerProcess:
        environment = {
            "TEST_SERVICE_SECONDS": str(service),
            "ML_ENDPOINTS_LOG_LEVEL": "warning",
            **env,
        }
        return start_server(
            "--model", str(demo_model_dir), "--handler", str(handler), *args, env=environment
        )

    return run


@pytest.fixture(scope="session")
def predict_body(demo_rows: list[list[float]]) -> bytes:
    """One demo row as a ``/invocations`` JSON body."""
    return json.dumps({"instances": [demo_rows[0]]}).encode()
