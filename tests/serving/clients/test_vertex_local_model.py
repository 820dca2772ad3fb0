"""The Vertex AI SDK's local serving (``LocalModel.deploy_to_local_endpoint``) runs the image.

What the SDK does (googleapis/python-aiplatform, ``google/cloud/aiplatform``):
- ``prediction/local_model.py`` / ``prediction/local_endpoint.py``: without routes given, the
  container gets ``AIP_PREDICT_ROUTE=/predict`` and ``AIP_HEALTH_ROUTE=/health``
  (``constants/prediction.py`` ``DEFAULT_LOCAL_PREDICT_ROUTE``/``DEFAULT_LOCAL_HEALTH_ROUTE``):
  the very paths of the Kubernetes API, so the platform-configured routes must win over them.
- ``docker_utils/run.py`` ``run_prediction_container``: the artifact directory is bind-mounted
  file by file under ``/tmp_cpr_local_model`` and named in ``AIP_STORAGE_URI``; ``AIP_HTTP_PORT``
  is set; the image's own ENTRYPOINT and CMD run.
- ``prediction/xgboost/predictor.py``: Vertex's prebuilt XGBoost container reads ``model.bst``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer

from tests.conftest import free_port
from tests.serving.clients.venvs import run_script
from tests.serving.image.docker_api import docker_api, remove_containers_on_port
from tests.serving.image.podman import IMAGE, Podman

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_local_model_with_the_sdk_default_routes_serves_model_bst(
    podman: Podman, tmp_path: Path
) -> None:
    rows, labels = load_breast_cancer(return_X_y=True)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(rows, labels)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    model.get_booster().save_model(str(artifacts / "model.bst"))
    probe = rows[[0, 1, 2, -3, -2, -1]]

    port = free_port()
    with docker_api(podman, tmp_path) as docker_host:
        try:
            report: Any = run_script(
                "vertex",
                "vertex_local_model.py",
                IMAGE,
                str(artifacts),
                str(port),
                json.dumps(probe.tolist()),
                env={**podman.env, "DOCKER_HOST": docker_host, "NO_GCE_CHECK": "true"},
                timeout=600,
            )
        finally:
            remove_containers_on_port(podman, port)

    assert report["routes"] == ["/health", "/predict"]
    health_status, _ = report["health"]
    assert health_status == 200
    status, answer = report["predict"]
    assert status == 200, answer
    assert answer == {"predictions": model.predict(probe).tolist()}
    status, answer = report["probabilities"]
    assert status == 200, answer
    np.testing.assert_array_equal(answer["predictions"], model.predict_proba(probe).astype(float))
