"""The SageMaker Python SDK's local mode deploys the image as SageMaker would and calls it.

What it checks, and where the expected behaviour comes from:
- SageMaker's scikit-learn container answers ``Accept: application/x-npy`` with ``np.save`` bytes
  and JSON with a bare list (aws/sagemaker-inference-toolkit ``encoder.py`` ``_array_to_npy``,
  ``_array_to_json``; aws/sagemaker-scikit-learn-container ``serving.py`` ``default_output_fn``),
  and the SDK's ``SKLearnPredictor`` uses ``NumpySerializer``/``NumpyDeserializer``.
- SageMaker's XGBoost framework container pickles a ``Booster`` into ``xgboost-model``
  (aws/sagemaker-xgboost-container ``serve_utils.get_loaded_booster``).
- SageMaker unpacks ``model.tar.gz`` as root: a member of mode 0600 owned by root arrives as
  such in ``/opt/ml/model`` (the SDK's local mode extracts the archive as the calling user, root
  here), and the container runs as root. The model must load; requests are served unprivileged.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path
from typing import Any

import pytest
import xgboost
from sklearn.datasets import load_breast_cancer

from tests.conftest import free_port
from tests.serving.clients.venvs import client_venv, run_script
from tests.serving.image.docker_api import docker_shims, remove_compose_containers
from tests.serving.image.podman import IMAGE, Podman

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _model_tar(path: Path, name: str, payload: bytes) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo(name)
        member.size, member.mode, member.uid, member.gid = len(payload), 0o600, 0, 0
        archive.addfile(member, io.BytesIO(payload))
    return path


def test_local_mode_numpy_and_json_with_a_root_only_xgboost_model(
    podman: Podman, tmp_path: Path
) -> None:
    rows, labels = load_breast_cancer(return_X_y=True)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(rows, labels)
    model_tar = _model_tar(
        tmp_path / "model.tar.gz", "xgboost-model", pickle.dumps(model.get_booster())
    )
    probe = rows[[0, 1, 2, -3, -2, -1]]
    expected = model.predict(probe).tolist()
    venv = client_venv("sagemaker")
    shims = docker_shims(tmp_path / "bin", venv / "bin" / "podman-compose")
    root = tmp_path / "container-root"
    root.mkdir()

    try:
        report: Any = run_script(
            "sagemaker",
            "sagemaker_local.py",
            IMAGE,
            str(model_tar),
            str(root),
            str(free_port()),
            json.dumps(probe.tolist()),
            env={
                **podman.env,
                "PATH": f"{shims}:{podman.env['PATH']}",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            },
            timeout=900,
        )
    finally:
        remove_compose_containers(podman, str(root))

    assert report["numpy"]["type"] == "ndarray"
    assert report["numpy"]["value"] == expected
    assert report["json"] == expected  # a bare list, as SageMaker's scikit-learn container answers
    assert report["csv_to_json"] == expected
