"""Existing clusters, the YAML render hand-off, and choosing a target from stack config."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from infra.clusters.config import declare_cluster, load
from infra.clusters.existing import ExistingClusterArgs
from infra.clusters.render import RenderArgs
from infra.k8s.config import load as load_deployment
from infra.k8s.model_deployment import ModelDeployment
from infra.stack.mocks import RecordingMocks
from infra.validation import ConfigError
from tests.infra.k8s.support import base_config, run_program

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
"""Pulumi's wire marker for secret values (``4dabf18193072939515e22adb298388d`` key)."""


def _secret_value(value: Any) -> Any:
    """The plain value of a wire secret; fails if ``value`` is not marked secret."""
    assert isinstance(value, dict), f"not a secret: {value!r}"
    assert value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG
    return value["value"]


def test_existing_cluster_provider_from_kubeconfig_and_context(
    pulumi_mocks: RecordingMocks,
) -> None:
    args = load({"type": "existing", "kubeconfig": "/etc/ml/kubeconfig", "context": "prod-eu"})
    assert isinstance(args, ExistingClusterArgs)
    run_program(lambda: declare_cluster("prod", args))
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert provider.name == "prod-k8s"
    assert _secret_value(provider.inputs["kubeconfig"]) == "/etc/ml/kubeconfig"
    assert provider.inputs["context"] == "prod-eu"
    assert pulumi_mocks.one("ml-endpoints:k8s:ExistingCluster").name == "prod"


def test_existing_cluster_defaults_to_the_ambient_kubeconfig(pulumi_mocks: RecordingMocks) -> None:
    run_program(lambda: declare_cluster("dev", load({"type": "existing"})))
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert "kubeconfig" not in provider.inputs
    assert "context" not in provider.inputs


def test_render_hand_off_writes_yaml_and_warns_about_secrets(
    pulumi_mocks: RecordingMocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    args = load({"type": "render", "directory": "rendered/prod"})
    assert isinstance(args, RenderArgs)
    deployment_args = load_deployment(base_config())

    def program() -> None:
        target = declare_cluster("gitops", args)
        ModelDeployment(
            "iris",
            deployment_args,
            service_account_annotations=target.service_account_annotations,
            opts=pulumi.ResourceOptions(providers=[target.provider]),
        )

    run_program(program)
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert provider.inputs["renderYamlToDirectory"] == "rendered/prod"
    assert len(warnings) == 1
    assert "plain text" in warnings[0]
    assert "'rendered/prod'" in warnings[0]
    objects = [r for r in pulumi_mocks.resources if r.type.startswith("kubernetes:")]
    assert objects
    assert all(r.provider and "::gitops-k8s::" in r.provider for r in objects)


@pytest.mark.parametrize(
    ("data", "key", "text"),
    [
        ({"type": "aks"}, "cluster.type", "'eks', 'gke', 'existing' or 'render'"),
        ({}, "cluster.type", "Input should be"),
        ({"type": "render"}, "cluster.directory", "Field required"),
        ({"type": "existing", "kubeconfig": ""}, "cluster.kubeconfig", "must not be empty"),
        ("eks", "cluster", "valid dictionary"),
    ],
    ids=["unknown-type", "missing-type", "render-directory", "empty-kubeconfig", "not-an-object"],
)
def test_invalid_cluster_config(data: Any, key: str, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(data)
    assert caught.value.key == key
    assert text in str(caught.value)


def test_model_deployment_on_eks_runs_as_the_irsa_role(pulumi_mocks: RecordingMocks) -> None:
    cluster_args = load({"type": "eks", "subnet_ids": ["subnet-0a1b2c", "subnet-0d4e5f"]})
    deployment_args = load_deployment(base_config(gpu={}))

    def program() -> None:
        target = declare_cluster("ml", cluster_args)
        ModelDeployment(
            "iris",
            deployment_args,
            service_account_annotations=target.service_account_annotations,
            opts=pulumi.ResourceOptions(providers=[target.provider]),
        )

    run_program(program)
    account = pulumi_mocks.one("kubernetes:core/v1:ServiceAccount").inputs
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn == "arn:aws:iam::123456789012:role/ml-serving"
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    assert deployment.provider is not None
    assert "::ml-k8s::" in deployment.provider
    pod = deployment.inputs["spec"]["template"]["spec"]
    gpu_group = next(
        r.inputs for r in pulumi_mocks.of_type("aws:eks/nodeGroup:NodeGroup") if r.name == "ml-gpu"
    )
    assert pod["nodeSelector"].items() <= gpu_group["labels"].items()
    assert pod["tolerations"][0]["key"] == gpu_group["taints"][0]["key"]
