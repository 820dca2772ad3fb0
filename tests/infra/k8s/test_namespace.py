"""The namespace exists before anything is created in it (issue 14, item 1).

Kubernetes never creates a namespace for an object put into it: the API answers
``namespaces "X" not found`` (pulumi/pulumi-kubernetes#142, the error on ``pulumi up``), and
pulumi-kubernetes' preview swallows that error (``provider/pkg/await/await.go``: a
``namespaceError`` is a ``PreviewError``), so only the real ``up`` fails. Creating a namespace
that already exists fails too since pulumi-kubernetes 4.29 (client-side create,
``AlreadyExists``; same file), so the cluster's own namespaces are read, never created.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.k8s.config import load
from infra.k8s.model_deployment import ModelDeployment
from infra.stack.mocks import Declared, RecordingMocks
from infra.validation import ConfigError
from tests.infra.k8s.support import (
    AB_VARIANTS,
    Options,
    base_config,
    manifest,
    record_options,
    run_program,
    validate_strict,
)
from tests.infra.offline_plans import stack_plans

NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
EVERYTHING = base_config(
    variants=AB_VARIANTS,
    gateway={"name": "public", "namespace": "gateways"},
    service_monitor={},
)


def _namespaced(mocks: RecordingMocks) -> list[Declared]:
    return [
        r
        for r in mocks.resources
        if r.type.startswith("kubernetes:") and r.inputs.get("metadata", {}).get("namespace")
    ]


def test_the_component_creates_its_namespace_and_everything_in_it_depends_on_it(
    pulumi_mocks: RecordingMocks,
) -> None:
    run_program(lambda: ModelDeployment("md", load(EVERYTHING)))

    namespace = pulumi_mocks.one(NAMESPACE_TYPE)
    assert namespace.inputs["metadata"]["name"] == "models"
    validate_strict(manifest(namespace.inputs))
    inside = _namespaced(pulumi_mocks)
    kinds = {r.inputs["kind"] for r in inside}
    assert kinds >= {
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HTTPRoute",
        "ServiceMonitor",
    }
    for resource in inside:
        assert resource.inputs["metadata"]["namespace"] == "models"
        assert namespace.urn in resource.dependencies, resource.name


def _declare(config: dict[str, Any]) -> Options:
    declared: Options = []

    def program() -> None:
        record_options(declared)
        ModelDeployment("md", load(config))

    run_program(program)
    return declared


def test_an_existing_namespace_is_read_not_created_and_still_comes_first(
    pulumi_mocks: RecordingMocks,
) -> None:
    """``create_namespace: false``: ``Namespace.get`` (a read, ``id`` set), so a preview fails
    when the namespace is missing and a destroy leaves it alone."""
    declared = _declare(base_config(namespace="shared", create_namespace=False))

    reads = [(name, o) for t, name, o in declared if t == NAMESPACE_TYPE]
    assert [(name, o.id) for name, o in reads] == [("md-namespace", "shared")]
    inside = _namespaced(pulumi_mocks)
    assert inside
    for resource in inside:
        on_namespace = [
            d for d in resource.dependencies if d.endswith(f"{NAMESPACE_TYPE}::md-namespace")
        ]
        assert on_namespace, resource.name


@pytest.mark.parametrize("namespace", ["default", "kube-system"])
def test_the_clusters_own_namespaces_are_adopted_by_default(
    pulumi_mocks: RecordingMocks, namespace: str
) -> None:
    declared = _declare(base_config(namespace=namespace))

    reads = [o.id for t, _, o in declared if t == NAMESPACE_TYPE]
    assert reads == [namespace]
    assert not [r for r in pulumi_mocks.resources if r.type == NAMESPACE_TYPE and r.urn]


def test_creating_a_namespace_every_cluster_has_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load(base_config(namespace="default", create_namespace=True))
    assert caught.value.key == "kubernetes.create_namespace"
    assert "'default' exists in every cluster: set create_namespace to false" in str(caught.value)


def test_staging_creates_ml_staging_before_its_deployments() -> None:
    """Staging builds a new GKE cluster and deploys into ``ml-staging``, which nothing else
    creates."""
    plan = stack_plans()["staging"]
    namespaces = [r for r in plan.resources if r.type == NAMESPACE_TYPE]
    assert [r.inputs["metadata"]["name"] for r in namespaces] == ["ml-staging"]
    deployments = [r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment"]
    assert deployments
    for deployment in deployments:
        assert namespaces[0].urn in deployment.dependencies


def test_namespaced_children_keep_their_own_dependencies(pulumi_mocks: RecordingMocks) -> None:
    """``depends_on`` lists are merged, not replaced: the HPA still waits for its Deployment."""
    run_program(lambda: ModelDeployment("md", load(base_config())))
    hpa = pulumi_mocks.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    namespace = pulumi_mocks.one(NAMESPACE_TYPE)
    assert {deployment.urn, namespace.urn} <= set(hpa.dependencies)
