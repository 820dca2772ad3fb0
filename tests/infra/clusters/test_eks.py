"""EksCluster: node groups, GPU taint/labels, NVIDIA device plugin, IRSA, kubeconfig."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.clusters.config import load
from infra.clusters.eks import EksCluster, EksClusterArgs
from infra.k8s.gpu import GPU_NODE_LABELS
from infra.stack.mocks import OIDC_ISSUER, RecordingMocks
from infra.validation import ConfigError
from tests.infra.k8s.support import Options, manifest, record_options, run_program, validate_strict

BASE: dict[str, Any] = {"type": "eks", "subnet_ids": ["subnet-0a1b2c", "subnet-0d4e5f"]}


def _args(**overrides: Any) -> EksClusterArgs:
    args = load({**BASE, **overrides})
    assert isinstance(args, EksClusterArgs)
    return args


def _declare(mocks: RecordingMocks, args: EksClusterArgs) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def program() -> pulumi.Output[None]:
        eks = EksCluster("ml", args)
        return pulumi.Output.all(
            eks.kubeconfig, eks.service_account_annotations["eks.amazonaws.com/role-arn"]
        ).apply(lambda v: seen.update(kubeconfig=v[0], role_arn=v[1]))

    run_program(program)
    return seen


def _node_group(mocks: RecordingMocks, name: str) -> dict[str, Any]:
    groups = {r.name: r.inputs for r in mocks.of_type("aws:eks/nodeGroup:NodeGroup")}
    return groups[name]


def test_cluster_uses_api_access_and_given_subnets(pulumi_mocks: RecordingMocks) -> None:
    _declare(pulumi_mocks, _args())
    cluster = pulumi_mocks.one("aws:eks/cluster:Cluster").inputs
    assert cluster["version"] == "1.33"
    assert cluster["vpcConfig"]["subnetIds"] == BASE["subnet_ids"]
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["accessConfig"]["authenticationMode"] == "API"


def test_gpu_node_group_is_tainted_labelled_and_uses_the_nvidia_ami(
    pulumi_mocks: RecordingMocks,
) -> None:
    gpu_nodes = {
        "instance_types": ["g6.2xlarge", "g5.2xlarge"],
        "scaling": {"min": 0, "desired": 1, "max": 6},
    }
    _declare(pulumi_mocks, _args(gpu_nodes=gpu_nodes))
    gpu = _node_group(pulumi_mocks, "ml-gpu")
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["instanceTypes"] == ["g6.2xlarge", "g5.2xlarge"]
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert GPU_NODE_LABELS.items() <= gpu["labels"].items()
    assert gpu["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 6}


def test_cpu_node_group_has_no_gpu_taint(pulumi_mocks: RecordingMocks) -> None:
    _declare(pulumi_mocks, _args())
    cpu = _node_group(pulumi_mocks, "ml-cpu")
    assert cpu["amiType"] == "AL2023_x86_64_STANDARD"
    assert "taints" not in cpu
    assert cpu["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 4}
    assert cpu["labels"] == {"ml-endpoints.io/pool": "cpu"}


def test_device_plugin_runs_on_gpu_nodes_only(pulumi_mocks: RecordingMocks) -> None:
    _declare(pulumi_mocks, _args())
    (plugin,) = pulumi_mocks.of_type("kubernetes:apps/v1:DaemonSet")
    daemonset = manifest(plugin.inputs)
    validate_strict(daemonset)
    pod = daemonset["spec"]["template"]["spec"]
    gpu = _node_group(pulumi_mocks, "ml-gpu")
    assert pod["nodeSelector"].items() <= gpu["labels"].items()
    (taint,) = gpu["taints"]
    assert pod["tolerations"] == [
        {"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["containers"][0]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
    assert plugin.provider is not None
    assert "pulumi:providers:kubernetes::ml-k8s::" in plugin.provider


def test_no_gpu_group_means_no_device_plugin(pulumi_mocks: RecordingMocks) -> None:
    _declare(pulumi_mocks, _args(gpu_nodes=None))
    assert [r.name for r in pulumi_mocks.of_type("aws:eks/nodeGroup:NodeGroup")] == ["ml-cpu"]
    assert pulumi_mocks.of_type("kubernetes:apps/v1:DaemonSet") == []


def test_irsa_role_trusts_only_the_serving_service_account(pulumi_mocks: RecordingMocks) -> None:
    policy = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    seen = _declare(
        pulumi_mocks,
        _args(
            serving_namespace="models", serving_service_account="iris", serving_policy_arns=[policy]
        ),
    )
    oidc = pulumi_mocks.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert oidc["url"] == OIDC_ISSUER
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]
    roles = {r.name: r.inputs for r in pulumi_mocks.of_type("aws:iam/role:Role")}
    (statement,) = json.loads(roles["ml-serving"]["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    issuer = OIDC_ISSUER.removeprefix("https://")
    assert (
        statement["Principal"]["Federated"] == f"arn:aws:iam::123456789012:oidc-provider/{issuer}"
    )
    assert statement["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:models:iris",
        f"{issuer}:aud": "sts.amazonaws.com",
    }
    attached = [
        r.inputs["policyArn"]
        for r in pulumi_mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    ]
    assert policy in attached
    assert seen["role_arn"] == "arn:aws:iam::123456789012:role/ml-serving"


def test_children_are_parented_and_node_counts_left_to_the_autoscaler(
    pulumi_mocks: RecordingMocks,
) -> None:
    declared: Options = []
    component: list[EksCluster] = []

    def program() -> None:
        record_options(declared)
        component.append(EksCluster("ml", _args()))

    run_program(program)
    children = [(t, n, o) for t, n, o in declared if t != "ml-endpoints:aws:EksCluster"]
    assert len(children) >= 12
    assert all(o.parent is component[0] for _, _, o in children)
    groups = {n: o for t, n, o in children if t == "aws:eks/nodeGroup:NodeGroup"}
    assert set(groups) == {"ml-cpu", "ml-gpu"}
    for options in groups.values():
        assert options.ignore_changes == ["scalingConfig.desiredSize"]


def test_kubeconfig_authenticates_with_aws_eks_get_token(pulumi_mocks: RecordingMocks) -> None:
    seen = _declare(pulumi_mocks, _args())
    kubeconfig = json.loads(seen["kubeconfig"])
    (cluster,) = kubeconfig["clusters"]
    assert cluster["cluster"]["server"] == "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com"
    assert cluster["cluster"]["certificate-authority-data"] == "LS0tLS1CRUdJTi1DQS0tLS0t"
    exec_ = kubeconfig["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"][:2] == ["eks", "get-token"]
    assert exec_["args"][exec_["args"].index("--region") + 1] == "us-east-1"
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert provider.name == "ml-k8s"


@pytest.mark.parametrize(
    ("overrides", "key", "text"),
    [
        ({"subnet_ids": ["subnet-0a1b2c"]}, "cluster.subnet_ids", "at least 2 items"),
        (
            {
                "gpu_nodes": {
                    "instance_types": ["m6i.large"],
                    "scaling": {"min": 0, "desired": 0, "max": 1},
                }
            },
            "cluster.gpu_nodes",
            "not x86_64 NVIDIA GPU instance types for AL2023_x86_64_NVIDIA: m6i.large",
        ),
        (
            {
                "cpu_nodes": {
                    "instance_types": ["m6i.large"],
                    "scaling": {"min": 2, "desired": 1, "max": 3},
                }
            },
            "cluster.cpu_nodes.scaling.desired",
            "at least min (2)",
        ),
        (
            {
                "cpu_nodes": {
                    "instance_types": ["m6i.large"],
                    "scaling": {"min": 1, "desired": 3, "max": 2},
                }
            },
            "cluster.cpu_nodes.scaling.max",
            "at least desired (3)",
        ),
        ({"kubernetes_version": "1.28"}, "cluster.kubernetes_version", "should match pattern"),
        ({"node_groups": []}, "cluster.node_groups", "Extra inputs are not permitted"),
    ],
    ids=[
        "subnets",
        "gpu-types",
        "desired-below-min",
        "max-below-desired",
        "version",
        "unknown-key",
    ],
)
def test_invalid_eks_config(overrides: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**BASE, **overrides})
    assert caught.value.key == key
    assert text in str(caught.value)


DEPLOY = "arn:aws:iam::333333333333:role/github-deploy"
PREVIEW = "arn:aws:iam::333333333333:role/github-preview"


@pytest.mark.parametrize(
    "instance_type", ["g6f.xlarge", "gr6f.4xlarge", "g7e.2xlarge", "p6-b200.48xlarge"]
)
def test_gpu_families_come_from_botocore(instance_type: str) -> None:
    """Item 6: a hand list (g4dn|g5|g6|g6e|gr6|p3..p5en) refused the families launched since;
    botocore's EC2 enumeration has them (infra/clusters/instance_types.py)."""
    args = _args(
        gpu_nodes={"instance_types": [instance_type], "scaling": {"min": 0, "desired": 0, "max": 2}}
    )
    assert args.gpu_nodes is not None


def test_access_entries_for_ci_and_people(pulumi_mocks: RecordingMocks) -> None:
    """Item 9: the deploy role (cluster admin), the preview role (view) and listed principals
    get EKS access entries with access policies; with a declared deploy role the creator is not
    made admin implicitly, and the Kubernetes provider waits for the grants."""
    args = _args(
        deploy_role_arn=DEPLOY,
        preview_role_arn=PREVIEW,
        access_entries=[
            {
                "principal_arn": "arn:aws:iam::333333333333:role/oncall",
                "policy": "edit",
                "namespaces": ["ml-prod"],
            }
        ],
    )
    _declare(pulumi_mocks, args)
    entries = [r.inputs for r in pulumi_mocks.of_type("aws:eks/accessEntry:AccessEntry")]
    assert sorted(e["principalArn"] for e in entries) == sorted(  # mocks register in any order
        [DEPLOY, PREVIEW, "arn:aws:iam::333333333333:role/oncall"]
    )
    associations = {
        a.inputs["principalArn"]: a.inputs
        for a in pulumi_mocks.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert associations[DEPLOY]["policyArn"].endswith(
        "cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    assert associations[PREVIEW]["policyArn"].endswith("cluster-access-policy/AmazonEKSViewPolicy")
    oncall = associations["arn:aws:iam::333333333333:role/oncall"]
    assert oncall["accessScope"] == {"type": "namespace", "namespaces": ["ml-prod"]}
    cluster = pulumi_mocks.one("aws:eks/cluster:Cluster").inputs
    assert cluster["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is False
    provider = pulumi_mocks.by_name["ml-k8s"]
    assert len([d for d in provider.dependencies if "AccessPolicyAssociation" in d]) == 3


def test_production_protects_the_cluster(pulumi_mocks: RecordingMocks) -> None:
    """Item 8: ``protect`` on the cluster (Pulumi refuses to delete or replace it)."""
    _declare(pulumi_mocks, _args(protect=True))
    assert pulumi_mocks.by_name["ml"].protect is True


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({"public_access_cidrs": ["203.0.113.0/24"]}, "shut out GitHub-hosted runners"),
        ({"endpoint_public_access": False}, "GitHub's runners are outside the VPC"),
        ({}, None),
        (
            {
                "endpoint_public_access": False,
                "ci_runners": "self-hosted",
                "runner_cidrs": ["10.0.0.0/16"],
            },
            None,
        ),
        (
            {
                "public_access_cidrs": ["203.0.113.0/24"],
                "ci_runners": "self-hosted",
                "runner_cidrs": ["198.51.100.7/32"],
            },
            "not within public_access_cidrs",
        ),
    ],
)
def test_runner_reachability(overrides: dict[str, Any], warned: str | None) -> None:
    """Item 9: a restricted or private API cannot be reached from GitHub-hosted runners
    (their addresses change, api.github.com/meta); ``ml-endpoints validate`` warns."""
    warning = _args(**overrides).runner_warning()
    if warned is None:
        assert warning is None
    else:
        assert warning is not None
        assert warned in warning
