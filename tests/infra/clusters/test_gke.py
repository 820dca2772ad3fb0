"""GkeCluster: workload identity, GPU pool with driver installation, taint, autoscaling, and
the replacement warning."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.clusters.config import load
from infra.clusters.gke import GkeCluster, GkeClusterArgs
from infra.k8s.gpu import GPU_NODE_LABELS
from infra.stack.mocks import RecordingMocks
from infra.validation import ConfigError
from tests.infra.k8s.support import Options, record_options, run_program

BASE: dict[str, Any] = {"type": "gke", "project": "acme-ml-prod", "location": "europe-west4"}


def _args(**overrides: Any) -> GkeClusterArgs:
    args = load({**BASE, **overrides})
    assert isinstance(args, GkeClusterArgs)
    return args


def _declare(args: GkeClusterArgs) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def program() -> pulumi.Output[None]:
        gke = GkeCluster("ml", args)
        return pulumi.Output.all(
            gke.kubeconfig, gke.service_account_annotations["iam.gke.io/gcp-service-account"]
        ).apply(lambda v: seen.update(kubeconfig=v[0], email=v[1]))

    run_program(program)
    return seen


def _pools(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in mocks.of_type("gcp:container/nodePool:NodePool")}


def test_cluster_has_workload_identity_and_no_default_pool(pulumi_mocks: RecordingMocks) -> None:
    _declare(_args())
    cluster = pulumi_mocks.one("gcp:container/cluster:Cluster").inputs
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "acme-ml-prod.svc.id.goog"}
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}
    assert cluster["deletionProtection"] is True


def test_gpu_pool_accelerators_driver_taint_labels_and_autoscaling(
    pulumi_mocks: RecordingMocks,
) -> None:
    gpu = {
        "accelerator_type": "nvidia-tesla-t4",
        "accelerator_count": 2,
        "machine_type": "n1-standard-8",
        "min_nodes": 0,
        "max_nodes": 5,
        "driver_version": "DEFAULT",
    }
    _declare(_args(gpu_nodes=gpu))
    pool = _pools(pulumi_mocks)["ml-gpu"]
    config = pool["nodeConfig"]
    assert config["guestAccelerators"] == [
        {
            "type": "nvidia-tesla-t4",
            "count": 2,
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"},
        }
    ]
    assert config["machineType"] == "n1-standard-8"
    assert config["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    ]
    assert GPU_NODE_LABELS.items() <= config["labels"].items()
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert pool["autoscaling"] == {"minNodeCount": 0, "maxNodeCount": 5}


def test_cpu_pool_has_no_accelerators(pulumi_mocks: RecordingMocks) -> None:
    _declare(_args(gpu_nodes=None))
    pools = _pools(pulumi_mocks)
    assert list(pools) == ["ml-cpu"]
    config = pools["ml-cpu"]["nodeConfig"]
    assert "guestAccelerators" not in config
    assert "taints" not in config
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


def test_serving_account_is_bound_to_the_kubernetes_service_account(
    pulumi_mocks: RecordingMocks,
) -> None:
    seen = _declare(_args(serving_namespace="models", serving_service_account="iris"))
    binding = pulumi_mocks.one("gcp:serviceaccount/iAMMember:IAMMember").inputs
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == "serviceAccount:acme-ml-prod.svc.id.goog[models/iris]"
    assert binding["serviceAccountId"].endswith(seen["email"])
    assert seen["email"] == "ml-serving@acme-ml-prod.iam.gserviceaccount.com"
    roles = {
        r.inputs["role"]: r.inputs["member"]
        for r in pulumi_mocks.of_type("gcp:projects/iAMMember:IAMMember")
    }
    assert roles["roles/storage.objectViewer"] == f"serviceAccount:{seen['email']}"


def test_children_are_parented_to_the_component(pulumi_mocks: RecordingMocks) -> None:
    declared: Options = []
    component: list[GkeCluster] = []

    def program() -> None:
        record_options(declared)
        component.append(GkeCluster("ml", _args()))

    run_program(program)
    children = [(t, n, o) for t, n, o in declared if t != "ml-endpoints:gcp:GkeCluster"]
    assert {t for t, _, _ in children} >= {
        "gcp:container/cluster:Cluster",
        "gcp:container/nodePool:NodePool",
        "gcp:serviceaccount/account:Account",
        "pulumi:providers:kubernetes",
    }
    assert all(o.parent is component[0] for _, _, o in children)


def test_kubeconfig_uses_the_gke_auth_plugin(pulumi_mocks: RecordingMocks) -> None:
    seen = _declare(_args())
    kubeconfig = json.loads(seen["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://34.118.0.10"
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"


def test_preview_warns_that_node_pool_changes_replace(
    pulumi_mocks: RecordingMocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    _declare(_args())
    assert len(warnings) == 1
    assert "GkeCluster ml:" in warnings[0]
    assert "REPLACES the pool" in warnings[0]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"gpu_nodes": {"min_nodes": 4, "max_nodes": 2}}, "cluster.gpu_nodes.max_nodes"),
        ({"gpu_nodes": {"accelerator_type": "tpu-v5"}}, "cluster.gpu_nodes.accelerator_type"),
        (
            {"gpu_nodes": {"driver_version": "INSTALLATION_DISABLED"}},
            "cluster.gpu_nodes.driver_version",
        ),
        ({"project": "Acme"}, "cluster.project"),
    ],
    ids=["max-below-min", "accelerator", "driver", "project"],
)
def test_invalid_gke_config(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **overrides})
    assert caught.value.key == key
