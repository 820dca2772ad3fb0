"""The KServe Python SDK (``kserve.InferenceRESTClient``, in its own venv) against the server.

What the SDK expects, from kserve/kserve (python/kserve/kserve):
- ``inference_client.py``: v2 ``is_server_live``/``is_server_ready`` return the body's
  ``live``/``ready`` field (``None`` when the body lacks it); v1 ``is_server_live`` GETs the base
  URL and checks ``status == "alive"``; v1 ``is_model_ready`` returns the body's ``ready``.
- ``protocol/rest/v2_datamodels.py``: ``ServerLiveResponse{live: bool}``,
  ``ServerReadyResponse{ready: bool}`` (the Open Inference Protocol's health bodies).
- ``protocol/rest/server.py``: ``GET /`` is the V1 liveness route; ``v1_endpoints.py``:
  ``GET /v1/models`` lists ``{"models": [names]}``.
- ``utils/utils.py`` ``get_predict_input``: a V1 body carries ``instances`` or ``inputs``, and
  both are answered ``{"predictions": [...]}`` (``get_predict_response``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.conftest import ServerProcess
from tests.serving.clients.venvs import run_script

pytestmark = pytest.mark.timeout(900)  # the first run installs the SDK's venv


@pytest.fixture(scope="module")
def report(demo_server: ServerProcess, demo_rows: list[list[float]]) -> dict[str, Any]:
    rows = np.asarray(demo_rows)[[0, 1, -2, -1]]
    answer = run_script(
        "kserve", "kserve_client.py", demo_server.url, "model", json.dumps(rows.tolist())
    )
    assert isinstance(answer, dict)
    return answer


@pytest.fixture(scope="module")
def expected(reference: Any, demo_rows: list[list[float]]) -> tuple[list[Any], list[list[float]]]:
    rows = np.asarray(demo_rows)[[0, 1, -2, -1]]
    return reference.predict(rows).tolist(), reference.predict_proba(rows).tolist()


def test_v2_health_bodies_satisfy_the_sdk(report: dict[str, Any]) -> None:
    assert report["v2_server_live"] is True
    assert report["v2_server_ready"] is True
    assert report["v2_model_ready"] is True
    assert report["v2_live_model"] == {"live": True}
    assert report["v2_ready_model"] == {"ready": True}


def test_v1_liveness_readiness_and_model_list(report: dict[str, Any]) -> None:
    assert report["v1_server_live"] is True
    assert report["v1_model_ready"] is True
    assert report["v1_models"] == [200, {"models": ["model"]}]


def test_v2_infer_binary_and_json(
    report: dict[str, Any], expected: tuple[list[Any], list[list[float]]]
) -> None:
    labels, probabilities = expected
    for binary in (True, False):
        outputs = report[f"v2_infer_binary_{binary}"]
        assert outputs["predict"] == labels
        np.testing.assert_allclose(outputs["predict_proba"], probabilities, rtol=0, atol=1e-9)


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_v1_predict_takes_instances_or_inputs(
    report: dict[str, Any], expected: tuple[list[Any], list[list[float]]], key: str
) -> None:
    assert report[f"v1_predict_{key}"] == {"predictions": expected[0]}
