"""``EksCluster``: an EKS cluster (pulumi-aws ``aws.eks``) with a CPU node group, a GPU managed
node group, the NVIDIA device plugin and IRSA for the model server's service account.

- GPU node group: AMI type ``AL2023_x86_64_NVIDIA`` (NVIDIA driver and container toolkit, but
  no device plugin, so :func:`~infra.clusters.nvidia.nvidia_device_plugin` is installed),
  ``nvidia.com/gpu=present:NO_SCHEDULE`` taint so only pods that tolerate it land there, and
  the :data:`~infra.k8s.gpu.GPU_NODE_LABELS` label the model pods select.
- ``desired`` sizes are starting points: the cluster autoscaler changes them, so Pulumi ignores
  later differences in ``scalingConfig.desiredSize``.
- IRSA: an IAM OIDC provider for the cluster's issuer and a role only the
  ``system:serviceaccount:<namespace>:<name>`` of the model server can assume; annotate that
  service account with :attr:`EksCluster.service_account_annotations`.
- Changing instance types, AMI type, disk size or capacity type replaces a node group
  (see :data:`~infra.clusters.node_pools.REPLACEMENT_NOTE`); scaling, labels and taints update
  in place.

pulumi-eks is not used: it is not installed here and ``aws.eks`` covers what is needed.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Sequence
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator

from infra.clusters.instance_types import family, nvidia_gpu_families
from infra.clusters.kubeconfig import exec_kubeconfig
from infra.clusters.node_pools import Scaling
from infra.clusters.nvidia import DEVICE_PLUGIN_VERSION, nvidia_device_plugin
from infra.k8s.config import DNS_LABEL
from infra.k8s.gpu import GPU_NODE_LABELS, GPU_TAINT_KEY, GPU_TAINT_VALUE
from infra.validation import Frozen

GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"
CPU_AMI_TYPE = "AL2023_x86_64_STANDARD"
#: EKS access policies (``aws eks list-access-policies``) by the names the stack uses.
ACCESS_POLICIES = {
    "cluster-admin": "AmazonEKSClusterAdminPolicy",
    "admin": "AmazonEKSAdminPolicy",
    "edit": "AmazonEKSEditPolicy",
    "view": "AmazonEKSViewPolicy",
}
_PRINCIPAL = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$"


class EksNodeGroup(Frozen):
    """One managed node group."""

    instance_types: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[0-9a-z]+$")]], Field(min_length=1)
    ]
    scaling: Scaling
    disk_size_gb: Annotated[int, Field(ge=20, le=16384)] = 100
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"


class AccessEntryArgs(Frozen):
    """An IAM principal's access to the cluster (EKS access entry + access policy)."""

    principal_arn: Annotated[str, Field(pattern=_PRINCIPAL)]
    policy: Literal["cluster-admin", "admin", "edit", "view"] = "view"
    namespaces: list[Annotated[str, Field(pattern=DNS_LABEL)]] = []
    """Limit the policy to these namespaces; the whole cluster when empty."""


class EksClusterArgs(Frozen):
    """``ml-endpoints:cluster`` with ``type: eks``."""

    type: Literal["eks"] = "eks"
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.(3[0-9]|[4-9][0-9])$")] = "1.33"
    subnet_ids: Annotated[
        list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]], Field(min_length=2)
    ]
    """Private subnets in at least two availability zones (the VPC is not created here)."""
    endpoint_public_access: bool = True
    public_access_cidrs: list[str] = ["0.0.0.0/0"]
    cpu_nodes: EksNodeGroup = EksNodeGroup(
        instance_types=["m6i.xlarge"], scaling=Scaling(min=1, desired=2, max=4)
    )
    gpu_nodes: EksNodeGroup | None = EksNodeGroup(
        instance_types=["g5.xlarge"], scaling=Scaling(min=0, desired=1, max=4)
    )
    device_plugin_version: Annotated[str, Field(pattern=r"^v\d+\.\d+\.\d+$")] = (
        DEVICE_PLUGIN_VERSION
    )
    serving_namespace: Annotated[str, Field(pattern=DNS_LABEL)] = "default"
    serving_service_account: Annotated[str, Field(pattern=DNS_LABEL)] = "model-server"
    serving_policy_arns: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::")]] = []
    """Managed policies for the model server's role (e.g. read access to the model bucket)."""
    deploy_role_arn: Annotated[str, Field(pattern=_PRINCIPAL)] | None = None
    """The CI role that runs ``pulumi up``: cluster admin through an access entry. When set,
    the cluster does not make its creator admin implicitly (that flag is ForceNew: setting it
    on an existing cluster would replace it, which ``protect`` refuses in production)."""
    preview_role_arn: Annotated[str, Field(pattern=_PRINCIPAL)] | None = None
    """The read-only role of ``pulumi preview`` in pull requests: view access."""
    access_entries: list[AccessEntryArgs] = []
    """Further people or roles and what they may do."""
    ci_runners: Literal["github-hosted", "self-hosted"] = "github-hosted"
    """Where ``pulumi up`` runs: GitHub's runners (public addresses that change, listed at
    api.github.com/meta ``actions``) or self-hosted runners."""
    runner_cidrs: list[str] = []
    """Self-hosted runners' addresses as the API sees them: inside the VPC (private endpoint)
    or their NAT's public address."""
    protect: bool = False
    """Production: Pulumi refuses to delete or replace the cluster."""

    @field_validator("gpu_nodes")
    @classmethod
    def _gpu_instance_types(cls, value: EksNodeGroup | None) -> EksNodeGroup | None:
        if value is not None:
            families = nvidia_gpu_families()
            bad = [t for t in value.instance_types if family(t) not in families]
            if bad:
                raise ValueError(
                    f"not x86_64 NVIDIA GPU instance types for {GPU_AMI_TYPE}: {', '.join(bad)} "
                    f"(families in botocore's EC2 model: {', '.join(families)})"
                )
        return value

    def runner_warning(self) -> str | None:
        """Why ``pulumi up`` from the configured runners cannot reach the Kubernetes API, or
        None. The program declares Kubernetes objects, so the runner must reach the API."""
        if self.ci_runners == "github-hosted":
            if not self.endpoint_public_access:
                return (
                    "the EKS API is private (endpoint_public_access: false) but ci_runners is "
                    "github-hosted: GitHub's runners are outside the VPC; use self-hosted "
                    "runners in the VPC"
                )
            if "0.0.0.0/0" not in self.public_access_cidrs:
                return (
                    f"public_access_cidrs {self.public_access_cidrs} shut out GitHub-hosted "
                    "runners (their addresses change, api.github.com/meta 'actions'); use "
                    "self-hosted runners (ci_runners: self-hosted, runner_cidrs) inside the "
                    "VPC or behind an allowed NAT"
                )
            return None
        if not self.runner_cidrs:
            return "ci_runners is self-hosted but runner_cidrs is empty: say where they run"
        if not self.endpoint_public_access:
            return None  # runners in the VPC reach the private endpoint (always on)
        allowed = [ipaddress.ip_network(c, strict=False) for c in self.public_access_cidrs]
        outside = [
            c
            for c in self.runner_cidrs
            if not any(ipaddress.ip_network(c, strict=False).subnet_of(a) for a in allowed)  # type: ignore[arg-type]
        ]
        if outside:
            return (
                f"runner_cidrs {outside} are not within public_access_cidrs "
                f"{self.public_access_cidrs}; runners inside the VPC need "
                "endpoint_public_access: false (or allow their NAT)"
            )
        return None


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, account: str) -> str:
    """Trust policy letting only ``namespace/account`` assume the role via the cluster's OIDC."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{account}",
                            f"{issuer}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    )


def eks_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with ``aws eks get-token`` (no long-lived secret)."""
    args = [
        "eks",
        "get-token",
        "--cluster-name",
        cluster_name,
        "--region",
        region,
        "--output",
        "json",
    ]
    return exec_kubeconfig(cluster_name, endpoint, ca_data, {"command": "aws", "args": args})


class EksCluster(pulumi.ComponentResource):
    """EKS with CPU and GPU node groups, the NVIDIA device plugin and IRSA (module docstring)."""

    provider: k8s.Provider
    """Kubernetes provider for this cluster: pass it to ``ModelDeployment``."""
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret: the cluster's kubeconfig (token from ``aws eks get-token``)."""
    oidc_provider_arn: pulumi.Output[str]
    serving_role_arn: pulumi.Output[str]
    service_account_annotations: dict[str, pulumi.Output[str]]
    """``eks.amazonaws.com/role-arn`` for the model server's service account."""
    node_groups: dict[str, aws.eks.NodeGroup]
    """``cpu`` and, with ``gpu_nodes``, ``gpu``."""

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ml-endpoints:aws:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region

        def managed(policy: str) -> pulumi.Output[str]:
            return partition.apply(lambda p: f"arn:{p}:iam::aws:policy/{policy}")

        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=_assume_role_policy("eks.amazonaws.com"),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=managed("AmazonEKSClusterPolicy"),
            opts=child,
        )
        cluster = aws.eks.Cluster(
            name,
            role_arn=cluster_role.arn,
            version=args.kubernetes_version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=args.endpoint_public_access,
                public_access_cidrs=list(args.public_access_cidrs)
                if args.endpoint_public_access
                else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=args.deploy_role_arn is None,
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[cluster_policy], protect=args.protect)
            ),
        )
        self.cluster_name = cluster.name

        node_role = aws.iam.Role(
            f"{name}-nodes", assume_role_policy=_assume_role_policy("ec2.amazonaws.com"), opts=child
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{policy}",
                role=node_role.name,
                policy_arn=managed(policy),
                opts=child,
            )
            for policy in (
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryReadOnly",
            )
        ]

        def node_group(suffix: str, group: EksNodeGroup, gpu: bool) -> aws.eks.NodeGroup:
            return aws.eks.NodeGroup(
                f"{name}-{suffix}",
                cluster_name=cluster.name,
                node_role_arn=node_role.arn,
                subnet_ids=list(args.subnet_ids),
                ami_type=GPU_AMI_TYPE if gpu else CPU_AMI_TYPE,
                instance_types=list(group.instance_types),
                capacity_type=group.capacity_type,
                disk_size=group.disk_size_gb,
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=group.scaling.min,
                    desired_size=group.scaling.desired,
                    max_size=group.scaling.max,
                ),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                labels={"ml-endpoints.io/pool": suffix, **(GPU_NODE_LABELS if gpu else {})},
                taints=(
                    [
                        aws.eks.NodeGroupTaintArgs(
                            key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"
                        )
                    ]
                    if gpu
                    else None
                ),
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=node_policies, ignore_changes=["scalingConfig.desiredSize"]
                    ),
                ),
            )

        self.node_groups = {"cpu": node_group("cpu", args.cpu_nodes, gpu=False)}
        gpu_group = node_group("gpu", args.gpu_nodes, gpu=True) if args.gpu_nodes else None
        if gpu_group is not None:
            self.node_groups["gpu"] = gpu_group

        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self.oidc_provider_arn = oidc.arn
        serving_role = aws.iam.Role(
            f"{name}-serving",
            assume_role_policy=pulumi.Output.all(oidc.arn, issuer).apply(
                lambda values: irsa_trust_policy(
                    values[0], values[1], args.serving_namespace, args.serving_service_account
                )
            ),
            opts=child,
        )
        for index, policy_arn in enumerate(args.serving_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-serving-{index}", role=serving_role.name, policy_arn=policy_arn, opts=child
            )
        self.serving_role_arn = serving_role.arn
        self.service_account_annotations = {"eks.amazonaws.com/role-arn": serving_role.arn}

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name,
                cluster.endpoint,
                cluster.certificate_authority.apply(lambda ca: str(ca.data)),
                region,
            ).apply(lambda v: eks_kubeconfig(v[0], v[1], v[2], v[3]))
        )
        grants = _access_entries(name, args, cluster, partition, self)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
        )
        if gpu_group is not None:
            nvidia_device_plugin(
                f"{name}-nvidia-device-plugin",
                args.device_plugin_version,
                pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[gpu_group]),
            )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "serving_role_arn": self.serving_role_arn,
            }
        )

    @property
    def google_service_account(self) -> None:
        """None: the pods act as an IAM role (IRSA), not a Google identity."""
        return None

    def node_pools_for(self, gpu: bool) -> list[pulumi.Resource]:
        """The node group that runs a workload's pods: the GPU group for GPU pods."""
        group = self.node_groups.get("gpu" if gpu else "cpu")
        return [group] if group is not None else []


def _access_entries(
    name: str,
    args: EksClusterArgs,
    cluster: aws.eks.Cluster,
    partition: pulumi.Output[str],
    parent: pulumi.Resource,
) -> list[pulumi.Resource]:
    """An access entry and access-policy association per principal: the deploy role (cluster
    admin), the preview role (view) and ``access_entries``."""
    wanted = [
        *(
            [AccessEntryArgs(principal_arn=args.deploy_role_arn, policy="cluster-admin")]
            if args.deploy_role_arn
            else []
        ),
        *(
            [AccessEntryArgs(principal_arn=args.preview_role_arn, policy="view")]
            if args.preview_role_arn
            else []
        ),
        *args.access_entries,
    ]
    made: list[pulumi.Resource] = []
    for index, grant in enumerate(wanted):
        opts = pulumi.ResourceOptions(parent=parent)
        entry = aws.eks.AccessEntry(
            f"{name}-access-{index}",
            cluster_name=cluster.name,
            principal_arn=grant.principal_arn,
            type="STANDARD",
            opts=opts,
        )
        scope = aws.eks.AccessPolicyAssociationAccessScopeArgs(
            type="namespace" if grant.namespaces else "cluster",
            namespaces=list(grant.namespaces) or None,
        )
        policy_arn = partition.apply(
            functools.partial(_access_policy_arn, ACCESS_POLICIES[grant.policy])
        )
        association = aws.eks.AccessPolicyAssociation(
            f"{name}-access-{index}",
            cluster_name=cluster.name,
            principal_arn=grant.principal_arn,
            policy_arn=policy_arn,
            access_scope=scope,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[entry]),
        )
        made += [entry, association]
    return made


def _access_policy_arn(policy: str, partition: str) -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{policy}"


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    """The cluster's OIDC issuer URL (``https://oidc.eks.<region>.amazonaws.com/id/...``)."""
    for identity in identities:
        for oidc in identity.oidcs or []:
            if oidc.issuer:
                return str(oidc.issuer)
    raise ValueError("the EKS cluster reports no OIDC issuer")
