"""Fixtures for reliability tests: the real server on the demo model behind a handler whose
service time is fixed, so that capacity does not depend on how busy the machine is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

#: Every model call sleeps ``TEST_SERVICE_SECONDS`` (which also makes the server run the model
#: on its model thread, as for any slow model); a first feature below zero marks a request that
#: takes ``TEST_SLOW_SECONDS``.
HANDLER = """
import os
import time

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    rows = np.asarray(data)
    slow = rows[:, 0].min() < 0
    time.sleep(float(os.environ["TEST_SLOW_SECONDS" if slow else "TEST_SERVICE_SECONDS"]))
    return model.predict(np.abs(rows))
"""

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_timed(
    start_server: StartServer, demo_model_dir: Path, tmp_path: Path
) -> Callable[..., ServerProcess]:
    """Start the demo model behind :data:`HANDLER`: ``start_timed(*flags, service=s, **env)``."""
    handler = tmp_path / "timed_handler.py"
    handler.write_text(HANDLER)

    def run(*args: str, service: float = 0.003, slow: float = 3.0, **env: str) -> ServerProcess:
        environment = {
            "TEST_SERVICE_SECONDS": str(service),
            "TEST_SLOW_SECONDS": str(slow),
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


@pytest.fixture(scope="session")
def slow_body(demo_rows: list[list[float]]) -> bytes:
    """One demo row marked slow (see :data:`HANDLER`)."""
    return json.dumps({"instances": [[-1.0, *demo_rows[0][1:]]]}).encode()
