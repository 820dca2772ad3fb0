"""Fixtures for the GCP tests: the fake Vertex AI API and valid config to start from."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from infra.gcp.config import VertexEndpointArgs, vertex_args_from_config
from tests.infra.gcp.fake_vertex import FakeVertex

# google-api-core warns once, on import, about Python 3.11's end of life: import it quietly here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import google.cloud.aiplatform_v1  # noqa: F401
with warnings.catch_warnings():  # pulumi-gcp warns about its own deprecated aliases on import
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_gcp

    pulumi_gcp.storage.BucketIAMMember  # noqa: B018

PROJECT = "ml-project"
REGION = "us-central1"
ENDPOINT_ID = "4242"
IMAGE = "us-central1-docker.pkg.dev/ml-project/serving/ml-endpoints:1.0.0"
IMAGE_V2 = "us-central1-docker.pkg.dev/ml-project/serving/ml-endpoints:2.0.0"
SERVICE_ACCOUNT = "ml-serving@ml-project.iam.gserviceaccount.com"


def vertex_config(**overrides: Any) -> dict[str, Any]:
    """A valid ``ml-endpoints:vertex`` value with two variants (100/0), updated by overrides."""
    config: dict[str, Any] = {
        "project": PROJECT,
        "region": REGION,
        "display_name": "churn",
        "endpoint_id": ENDPOINT_ID,
        "model_name": "churn",
        "labels": {"team": "ml"},
        "variants": [
            {
                "name": "champion",
                "image": IMAGE,
                "artifact_uri": "gs://ml-models/churn/v1",
                "model_version": "1",
                "machine_type": "n1-standard-4",
                "min_replicas": 1,
                "max_replicas": 3,
                "cpu_utilization_target": 60,
            },
            {
                "name": "challenger",
                "image": IMAGE,
                "artifact_uri": "gs://ml-models/churn/v2",
                "model_version": "2",
                "machine_type": "n1-standard-4",
                "accelerator": {"type": "NVIDIA_TESLA_T4", "count": 1},
                "accelerator_duty_cycle_target": 70,
            },
        ],
        "traffic": {"champion": 100, "challenger": 0},
    }
    config.update(copy.deepcopy(overrides))
    return config


def vertex_args(fake: FakeVertex | None = None, **overrides: Any) -> VertexEndpointArgs:
    """Validated args; with ``fake``, pointed at it."""
    if fake is not None:
        overrides.setdefault("api_endpoint", fake.url)
    return vertex_args_from_config(vertex_config(**overrides))


@pytest.fixture
def fake_vertex() -> Iterator[FakeVertex]:
    """A running fake with the configured endpoint already created (as AiEndpoint would)."""
    fake = FakeVertex().start()
    fake.add_endpoint(PROJECT, REGION, "churn", ENDPOINT_ID)
    yield fake
    fake.stop()


@pytest.fixture
def endpoint_name() -> str:
    return f"projects/{PROJECT}/locations/{REGION}/endpoints/{ENDPOINT_ID}"
