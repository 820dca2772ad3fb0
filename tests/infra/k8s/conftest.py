"""Render a ModelDeployment under the shared Pulumi mocks and hand back its manifests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from infra.k8s.config import ModelDeploymentArgs, load
from infra.k8s.model_deployment import ModelDeployment
from tests.infra.conftest import RecordingMocks
from tests.infra.k8s.support import manifest

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def render(pulumi_mocks: RecordingMocks) -> Render:
    """``render(config_or_args, **component_kwargs)`` declares a ModelDeployment, waits for
    every registration and returns the manifests of the Kubernetes objects it declared."""

    def run(config: dict[str, Any] | ModelDeploymentArgs, **kwargs: Any) -> list[dict[str, Any]]:
        args = config if isinstance(config, ModelDeploymentArgs) else load(config)

        @pulumi.runtime.test
        def declare() -> None:
            ModelDeployment("md", args, **kwargs)

        declare()
        return [
            manifest(r.inputs) for r in pulumi_mocks.resources if r.type.startswith("kubernetes:")
        ]

    return run
