"""Render a ModelDeployment under the shared Pulumi mocks and hand back its manifests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.k8s.config import ModelDeploymentArgs, load
from infra.k8s.model_deployment import ModelDeployment
from infra.stack.mocks import RecordingMocks
from tests.infra.k8s.support import manifest, run_program

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def render(pulumi_mocks: RecordingMocks) -> Render:
    """``render(config_or_args, **component_kwargs)`` declares a ModelDeployment, waits for
    every registration and returns the manifests of the Kubernetes objects it declared."""

    def run(config: dict[str, Any] | ModelDeploymentArgs, **kwargs: Any) -> list[dict[str, Any]]:
        args = config if isinstance(config, ModelDeploymentArgs) else load(config)

        run_program(lambda: ModelDeployment("md", args, **kwargs))
        return [
            manifest(r.inputs) for r in pulumi_mocks.resources if r.type.startswith("kubernetes:")
        ]

    return run
