"""GkeCluster: workload identity, GPU pool with driver installation, taint, autoscaling, and
the replacement warning."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.clusters.config import load
from infra.clusters.gke import (
    POOL_FIELDS,
    POOL_REPLACEMENT_NOTE,
    GkeCluster,
    GkeClusterArgs,
    GkeGpuPool,
)
from infra.k8s.gpu import GPU_NODE_LABELS
from infra.stack.components import compose
from infra.stack.config import load_stack
from infra.stack.files import read_stack_file, stack_file
from infra.stack.mocks import RecordingMocks
from infra.stack.replacements import GCP
from infra.validation import ConfigError
from tests.infra.k8s.support import Options, record_options, run_program
from tests.infra.offline_plans import STACKS_DIR, stack_plans

BASE: dict[str, Any] = {
    "type": "gke",
    "project": "acme-ml-prod",
    "location": "europe-west4",
    "gpu_nodes": {"zones": ["europe-west4-b"]},
}


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
        "zones": ["europe-west4-a"],
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


def _replacing_part(note: str) -> str:
    return note.split("REPLACES the pool")[0]


def test_the_warning_names_exactly_the_pool_settings_that_force_a_new_pool() -> None:
    """terraform-provider-google ``google/services/container/node_config.go``
    (``schemaNodeConfig``): ``guest_accelerator`` with ``count``, ``type`` and
    ``gpu_driver_installation_config.gpu_driver_version``, ``spot`` and ``service_account`` are
    ``ForceNew``; ``machine_type``, ``disk_size_gb``, ``labels`` and ``taint`` are not, and
    ``nodePoolNodeConfigUpdate`` changes them in place (``node_locations`` and ``autoscaling``:
    ``nodePoolUpdate`` in ``resource_container_node_pool.go``). The verdicts are the replacement
    table's, read from those files; the warning must agree with it for every setting a stack
    file can change, and must not call an in-place change a replacement."""
    rule = GCP["gcp:container/nodePool:NodePool"]
    replacing = _replacing_part(POOL_REPLACEMENT_NOTE)
    assert set(POOL_FIELDS) == set(GkeGpuPool.model_fields)
    for key, path in POOL_FIELDS.items():
        verdict = rule.verdict(path)
        assert verdict is not None, path
        assert (key in replacing) is verdict, (key, path, verdict)
    # What the component fixes itself: the nodes' account replaces; labels and taints do not.
    assert rule.verdict("nodeConfig.serviceAccount") is True
    assert "service account" in replacing
    for path, word in (("nodeConfig.labels", "labels"), ("nodeConfig.taints", "taint")):
        assert rule.verdict(path) is False
        assert word not in replacing


@pytest.mark.parametrize(
    ("production", "explicit", "expected"),
    [(True, None, True), (False, None, False), (False, True, True), (True, False, False)],
)
def test_deletion_protection_follows_the_stack_policy_unless_set(
    production: bool, explicit: bool | None, expected: bool
) -> None:
    """terraform-provider-google defaults ``deletion_protection`` to true
    (``resource_container_cluster.go``; ``resourceContainerClusterDelete`` refuses while it is
    set), so ``pulumi destroy`` of a dev or staging cluster failed. Production stacks keep it."""
    config = read_stack_file(stack_file("staging", STACKS_DIR))
    config["ml-endpoints:policy"] = {"production": production}
    if explicit is not None:
        config["ml-endpoints:cluster"]["deletion_protection"] = explicit
    cluster = compose(load_stack(config, "stacks/Pulumi.staging.yaml")).cluster
    assert isinstance(cluster, GkeClusterArgs)
    assert cluster.deletion_protection is expected


def test_staging_can_be_destroyed_and_a_lone_component_is_protected(
    pulumi_mocks: RecordingMocks,
) -> None:
    staging = stack_plans()["staging"]
    clusters = [r for r in staging.resources if r.type == "gcp:container/cluster:Cluster"]
    assert [c.inputs["deletionProtection"] for c in clusters] == [False]
    _declare(_args())
    assert pulumi_mocks.one("gcp:container/cluster:Cluster").inputs["deletionProtection"] is True


def test_gpu_pool_runs_only_in_the_zones_given(pulumi_mocks: RecordingMocks) -> None:
    """``node_locations`` of the GPU pool (terraform-provider-google
    ``resource_container_node_pool.go``: updated in place by ``nodePoolUpdate``); without it a
    regional cluster's pool goes into every zone of the region, and creating it fails in a zone
    without the accelerator. The CPU pool keeps the cluster's zones."""
    _declare(_args(gpu_nodes={"zones": ["europe-west4-a", "europe-west4-c"]}))
    pools = _pools(pulumi_mocks)
    assert pools["ml-gpu"]["nodeLocations"] == ["europe-west4-a", "europe-west4-c"]
    assert "nodeLocations" not in pools["ml-cpu"]


def test_staging_gpu_pool_zones_are_set() -> None:
    staging = stack_plans()["staging"]
    pool = next(r for r in staging.resources if r.name == "cluster-gpu")
    assert pool.inputs["nodeLocations"] == ["us-central1-a"]


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
        ({"gpu_nodes": {}}, "cluster.gpu_nodes.zones"),
        ({"gpu_nodes": {"zones": ["us-central1-a"]}}, "cluster.gpu_nodes.zones"),
        ({"gpu_nodes": {"zones": ["europe-west4-a", "europe-west4-a"]}}, "cluster.gpu_nodes.zones"),
        (
            {"location": "europe-west4-b", "gpu_nodes": {"zones": ["europe-west1-b"]}},
            "cluster.gpu_nodes.zones",
        ),
    ],
    ids=[
        "max-below-min",
        "accelerator",
        "driver",
        "project",
        "regional-without-zones",
        "zone-outside-region",
        "zone-twice",
        "zonal-cluster-other-region",
    ],
)
def test_invalid_gke_config(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **overrides})
    assert caught.value.key == key
