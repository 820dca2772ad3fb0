"""How long ``pulumi up`` waits for a model Deployment: long enough for a real first rollout."""

from __future__ import annotations

import pytest

from infra.k8s.config import load
from infra.k8s.model_deployment import ModelDeployment
from infra.stack.mocks import RecordingMocks
from tests.infra.k8s.support import base_config, run_program


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


@pytest.mark.parametrize("startup_timeout", [600, 1800])
def test_deployments_wait_for_image_pull_model_download_and_the_startup_probe(
    pulumi_mocks: RecordingMocks, startup_timeout: int
) -> None:
    """pulumi-kubernetes waits 10 minutes for a Deployment unless ``customTimeouts`` say
    otherwise (``provider/pkg/await/deployment.go`` ``DefaultDeploymentTimeoutMins = 10``;
    ``provider/pkg/metadata/overrides.go`` ``TimeoutDuration``: customTimeouts first): shorter
    than the startup probe's own 600 s, before any image pull. The controller's
    ``progressDeadlineSeconds`` must not end the rollout earlier either."""
    args = load(base_config(probes={"startup_timeout_seconds": startup_timeout}))
    run_program(lambda: ModelDeployment("md", args))

    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    waits = {k: _seconds(v) for k, v in deployment.custom_timeouts.items()}
    assert set(waits) == {"create", "update"}
    for seconds in waits.values():
        assert seconds >= startup_timeout + 600, "the probe's window plus a pull and download"
    deadline = deployment.inputs["spec"]["progressDeadlineSeconds"]
    assert deadline >= waits["create"]
