"""The serving image, built with podman and run as SageMaker, Vertex AI and Kubernetes run it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.image.podman import IMAGE, Container, Podman, running

# The first build on a fresh machine (base image, then every wheel) takes minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

UID = "10001"
SAGEMAKER_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
#: SageMaker sends SIGKILL 30 s after SIGTERM.
GRACE_SECONDS = 30


@pytest.fixture(scope="module")
def served(podman: Podman) -> Iterator[Container]:
    """``docker run IMAGE serve`` as SageMaker starts it, shared by the checks that only ask."""
    with running(podman, IMAGE, "serve") as container:
        yield container


@pytest.fixture(scope="module")
def rows(demo_rows: list[list[float]]) -> np.ndarray:
    """Rows from both classes of the breast-cancer data (it starts with malignant cases)."""
    data = np.asarray(demo_rows)
    return np.concatenate([data[:4], data[-4:]])


def predict_json(container: Container, rows: np.ndarray) -> list[Any]:
    response = httpx.post(
        container.url + "/invocations",
        content=json.dumps({"instances": rows.tolist()}),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, f"{response.text}\n{container.logs()}"
    predictions: list[Any] = response.json()  # a bare list, as SageMaker's containers answer
    return predictions


def predictions_counted(container: Container) -> float:
    """Sum of ``model_predictions_total{status="success"}`` over every label set."""
    response = httpx.get(container.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "model_predictions_total" and sample.labels["status"] == "success"
    )


def test_serve_answers_sagemaker_routes_and_metrics(served: Container, rows: np.ndarray) -> None:
    from serving.demo import build_demo_model

    expected = build_demo_model().predict(rows).tolist()
    counted = predictions_counted(served)

    assert predict_json(served, rows) == expected
    csv = "\n".join(",".join(repr(v) for v in row) for row in rows.tolist())
    response = httpx.post(
        served.url + "/invocations",
        content=csv,
        headers={"content-type": "text/csv"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == expected
    assert predictions_counted(served) == counted + 2


def test_serves_the_model_mounted_read_only_at_opt_ml_model(
    podman: Podman, tmp_path: Path, rows: np.ndarray
) -> None:
    from serving.demo import write_demo_artifacts

    model_dir = write_demo_artifacts(tmp_path / "model", "hgb")
    # As SageMaker unpacks model.tar.gz: readable by the container's non-root user.
    for path in [tmp_path, model_dir, *model_dir.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    expected = joblib.load(model_dir / "model.joblib").predict_proba(rows)

    with running(
        podman,
        IMAGE,
        "serve",
        env={"ML_ENDPOINTS_OUTPUT": "probabilities"},
        run_options=["--volume", f"{model_dir}:/opt/ml/model:ro"],
    ) as container:
        probabilities = predict_json(container, rows)
    # The demo model (a logistic regression) would give other probabilities.
    np.testing.assert_allclose(probabilities, expected, rtol=1e-9, atol=1e-12)


def test_serving_writes_nothing_outside_tmp(podman: Podman, served: Container) -> None:
    """What readOnlyRootFilesystem needs; also catches libraries writing to $HOME (telemetry)."""
    assert len(predict_json(served, np.zeros((1, 30)))) == 1
    diff = json.loads(podman("diff", "--format", "json", served.name).stdout)
    written = [path for kind in ("added", "changed", "deleted") for path in diff.get(kind) or []]
    # /etc: podman's own mount points for /etc/hosts, /etc/resolv.conf and /etc/hostname.
    assert [p for p in written if p not in ("/etc", "/tmp") and not p.startswith("/tmp/")] == []


def test_serves_as_non_root(podman: Podman, served: Container) -> None:
    """No USER in the image (SageMaker runs it as root and its model files may be root's only):
    the server drops to the serving user before serving; every process runs as it."""
    config = podman.inspect_image(IMAGE)["Config"]
    assert config.get("User", "") in ("", "root", "0")
    assert f"ML_ENDPOINTS_SERVING_USER={UID}:{UID}" in config["Env"]
    listing = podman("top", served.name, "huser").stdout.split()[1:]
    assert set(listing) == {UID}


def test_answers_with_a_read_only_root_filesystem_and_two_workers(
    podman: Podman, rows: np.ndarray
) -> None:
    """Kubernetes' readOnlyRootFilesystem with an emptyDir on /tmp: nothing else is writable.

    Two workers also make the server keep multi-process metrics under /tmp, and SIGTERM goes
    through the supervisor, which must still exit 0.
    """
    requests = 6
    with running(
        podman,
        IMAGE,
        "serve",
        env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"},
        run_options=["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp"],
    ) as container:
        for _ in range(requests):
            assert len(predict_json(container, rows)) == len(rows)
        assert predictions_counted(container) == requests  # summed over both workers

        podman("stop", "--time", str(GRACE_SECONDS), container.name, timeout=GRACE_SECONDS + 15)
        assert container.state()["ExitCode"] == 0, container.logs()


def test_final_stage_has_no_build_tools_and_its_extras_import(podman: Podman) -> None:
    script = """
import importlib.util, json, shutil
print(json.dumps({
    "tools": [t for t in ("gcc", "cc", "c++", "g++", "make", "ld") if shutil.which(t)],
    "installers": [m for m in ("pip", "setuptools") if importlib.util.find_spec(m)],
}))
import boto3, google.cloud.storage, onnxruntime, skl2onnx, treelite  # the default EXTRAS
import lightgbm, xgboost  # lightgbm needs the system's libgomp
"""
    result = podman("run", "--rm", "--entrypoint", "python3", IMAGE, "-c", script)
    assert json.loads(result.stdout) == {"tools": [], "installers": []}


def test_image_config_has_healthcheck_label_and_entrypoint(podman: Podman) -> None:
    image = podman.inspect_image(IMAGE)
    # Docker's image format: the OCI format has no HEALTHCHECK (podman lifts it out of Config).
    assert image["ManifestType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert image["Healthcheck"]["Test"] == ["CMD", "ml-endpoints", "healthcheck"]
    config = image["Config"]
    assert config["Labels"][SAGEMAKER_LABEL] == "true"
    assert config["Entrypoint"] == ["ml-endpoints"]
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]


def test_healthcheck_reports_healthy(podman: Podman, served: Container) -> None:
    assert podman("healthcheck", "run", served.name).returncode == 0
    assert served.state()["Health"]["Status"] == "healthy"


def test_sigterm_turns_unready_at_once_and_exits_zero_within_the_grace_period(
    podman: Podman,
) -> None:
    with running(podman, IMAGE) as container:  # the default CMD
        started = time.monotonic()
        podman("kill", "--signal", "TERM", container.name)
        while (status := httpx.get(container.url + "/ping", timeout=2).status_code) == 200:
            assert time.monotonic() - started < 1, "still ready 1 s after SIGTERM"
            time.sleep(0.02)
        assert status == 503  # draining: unready, but still answering

        waited = podman("wait", container.name, timeout=GRACE_SECONDS + 15)
        elapsed = time.monotonic() - started
        assert waited.stdout.strip() == "0", container.logs()
        assert elapsed < GRACE_SECONDS
