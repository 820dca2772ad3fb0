"""``GkeCluster``: a GKE Standard cluster (pulumi-gcp) with workload identity, a CPU node pool
and a GPU node pool, plus a Google service account the model server runs as.

- The default node pool is removed; pools are separate resources so they can change on their
  own.
- GPU pool: ``guest_accelerators`` with ``gpu_driver_installation_config`` so GKE installs the
  NVIDIA driver (and runs its own device plugin: none is installed here), the
  ``nvidia.com/gpu=present:NO_SCHEDULE`` taint, the :data:`~infra.k8s.gpu.GPU_NODE_LABELS`
  label, and autoscaling between ``min_nodes`` and ``max_nodes`` per zone.
- Workload identity: the pools run the GKE metadata server, and the Kubernetes service account
  ``<namespace>/<name>`` may impersonate the serving Google service account; annotate it with
  :attr:`GkeCluster.service_account_annotations`. The binding's member names the identity pool
  the cluster reports (``workloadIdentityConfig.workloadPool``), so it waits for the cluster:
  the pool ``PROJECT.svc.id.goog`` exists only once a cluster with workload identity does, and
  a binding made before fails with "Identity Pool does not exist".
- APIs: ``container`` and ``iam`` are enabled in the project (:mod:`infra.gcp.apis`) before the
  cluster and the service accounts.
- :meth:`GkeCluster.node_pools_for` gives the pools a workload runs on, for its resources to
  depend on (pods of a Deployment created before its pool stay Pending and the rollout times
  out on a new cluster).
- Dataplane V2 enforces the ModelDeployment's NetworkPolicy; the Gateway API (standard channel)
  serves its HTTPRoute.

- ``deletion_protection`` (the provider's default is true: ``pulumi destroy`` fails until it is
  turned off) follows ``ml-endpoints:policy.production`` unless the stack file sets it.
- GPU pools run in ``gpu_nodes.zones`` (``node_locations``): a regional cluster otherwise puts a
  pool in every zone of its region, and a zone without the accelerator fails the pool's
  creation ("Accelerator type ... does not exist in zone"). Required with a regional cluster;
  each zone must be in the cluster's region.

**Replacement:** :data:`POOL_REPLACEMENT_NOTE`, logged as a warning on every preview, names the
settings that force a new pool in terraform-provider-google
(``google/services/container/node_config.go``: ``guest_accelerator`` with its
``gpu_driver_installation_config``, ``spot``, ``service_account``, ``oauth_scopes``,
``shielded_instance_config`` are ``ForceNew``; ``machine_type``, ``disk_size_gb``, ``labels``
and ``taint`` are updated by ``nodePoolNodeConfigUpdate``), the verdicts of
:mod:`infra.stack.replacements`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pydantic import Field, ValidationInfo, field_validator, model_validator

from infra.clusters.kubeconfig import exec_kubeconfig
from infra.gcp.apis import CONTAINER, IAM, ProjectApis, apis_or_own
from infra.k8s.config import DNS_LABEL
from infra.k8s.gpu import GPU_NODE_LABELS, GPU_TAINT_KEY, GPU_TAINT_VALUE
from infra.validation import Frozen, rule_error

POOL_REPLACEMENT_NOTE = (
    "changing a pool's accelerator_type, accelerator_count, driver_version or spot (or the "
    "nodes' service account) REPLACES the pool, draining and recreating its nodes; add a new "
    "pool and move workloads instead when downtime matters. machine_type and disk_size_gb change "
    "in place, but GKE recreates every node of the pool (surge upgrade); min_nodes, max_nodes "
    "and zones change in place"
)
"""The GKE warning: only what ``ForceNew`` in terraform-provider-google (module docstring)."""
POOL_FIELDS = {
    "accelerator_type": "nodeConfig.guestAccelerators[].type",
    "accelerator_count": "nodeConfig.guestAccelerators[].count",
    "driver_version": (
        "nodeConfig.guestAccelerators[].gpuDriverInstallationConfig.gpuDriverVersion"
    ),
    "spot": "nodeConfig.spot",
    "machine_type": "nodeConfig.machineType",
    "disk_size_gb": "nodeConfig.diskSizeGb",
    "min_nodes": "autoscaling.minNodeCount",
    "max_nodes": "autoscaling.maxNodeCount",
    "zones": "nodeLocations",
}
"""Each pool setting of the stack file and the node pool input it sets (wire names)."""
ZONE = r"^[a-z]+-[a-z]+[0-9]-[a-z]$"
NODE_ROLES = (
    "roles/container.defaultNodeServiceAccount",
    "roles/artifactregistry.reader",
)


class GkeNodePool(Frozen):
    """One autoscaled node pool (counts are per zone of the cluster's location)."""

    machine_type: Annotated[str, Field(pattern=r"^[a-z0-9]+-[a-z0-9-]+$")] = "e2-standard-4"
    min_nodes: Annotated[int, Field(ge=0, le=1000)] = 1
    max_nodes: Annotated[int, Field(ge=1, le=1000)] = Field(default=3, validate_default=True)
    disk_size_gb: Annotated[int, Field(ge=10, le=65536)] = 100
    spot: bool = False

    @field_validator("max_nodes")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_nodes")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_nodes ({low}), got {value}")
        return value


class GkeGpuPool(GkeNodePool):
    """A GPU node pool; ``accelerator_type`` must be offered in the pool's zones."""

    machine_type: Annotated[str, Field(pattern=r"^[a-z0-9]+-[a-z0-9-]+$")] = "g2-standard-8"
    min_nodes: Annotated[int, Field(ge=0, le=1000)] = 0
    accelerator_type: Annotated[str, Field(pattern=r"^nvidia-[a-z0-9-]+$")] = "nvidia-l4"
    accelerator_count: Annotated[int, Field(ge=1, le=16)] = 1
    driver_version: Literal["DEFAULT", "LATEST"] = "LATEST"
    zones: list[Annotated[str, Field(pattern=ZONE)]] = []
    """``node_locations``: zones of the cluster's region that offer ``accelerator_type``
    (``gcloud compute accelerator-types list --filter="name=ACCELERATOR"``; "GPU regions and
    zones availability", Compute Engine documentation). Required with a regional cluster."""


class GkeClusterArgs(Frozen):
    """``ml-endpoints:cluster`` with ``type: gke``."""

    type: Literal["gke"] = "gke"
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    location: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9](-[a-z])?$")]
    """Region (regional cluster, three zones) or zone."""
    network: str | None = None
    subnetwork: str | None = None
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    deletion_protection: bool | None = None
    """Refuse to delete the cluster (``pulumi destroy`` fails). Left out: true for stacks with
    ``policy.production``, false otherwise; the component alone defaults to true."""
    cpu_nodes: GkeNodePool = GkeNodePool()
    gpu_nodes: GkeGpuPool | None = GkeGpuPool()
    serving_namespace: Annotated[str, Field(pattern=DNS_LABEL)] = "default"
    serving_service_account: Annotated[str, Field(pattern=DNS_LABEL)] = "model-server"
    serving_roles: list[Annotated[str, Field(pattern=r"^roles/")]] = ["roles/storage.objectViewer"]
    """Project roles of the model server's Google service account (reading gs:// models)."""

    @model_validator(mode="after")
    def _gpu_zones_in_region(self) -> Self:
        gpu = self.gpu_nodes
        if gpu is None:
            return self
        regional = re.fullmatch(r"[a-z]+-[a-z]+[0-9]", self.location) is not None
        region = self.location if regional else self.location.rsplit("-", 1)[0]
        key = ("gpu_nodes", "zones")
        if regional and not gpu.zones:
            raise rule_error(
                key,
                f"required with a regional cluster ({self.location}): list the zones of "
                f"{region} that offer {gpu.accelerator_type} (gcloud compute accelerator-types "
                f'list --filter="name={gpu.accelerator_type} AND zone~{region}"); otherwise the '
                "pool goes into every zone and fails where the accelerator is missing",
                gpu.zones,
            )
        outside = [zone for zone in gpu.zones if not zone.startswith(f"{region}-")]
        if outside:
            raise rule_error(
                key, f"must be zones of the cluster's region {region}, got {outside}", gpu.zones
            )
        if len(set(gpu.zones)) != len(gpu.zones):
            raise rule_error(key, "lists a zone twice", gpu.zones)
        return self


def _workload_pool(config: gcp.container.outputs.ClusterWorkloadIdentityConfig | None) -> str:
    if config is None or not config.workload_pool:
        raise ValueError("the cluster reports no workload identity pool")
    return config.workload_pool


def gke_kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig that authenticates with ``gke-gcloud-auth-plugin`` (no static secret)."""
    plugin = {"command": "gke-gcloud-auth-plugin", "provideClusterInfo": True}
    return exec_kubeconfig(cluster_name, f"https://{endpoint}", ca_certificate, plugin)


class GkeCluster(pulumi.ComponentResource):
    """GKE with workload identity and CPU and GPU node pools (module docstring)."""

    provider: k8s.Provider
    """Kubernetes provider for this cluster: pass it to ``ModelDeployment``."""
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    serving_service_account_email: pulumi.Output[str]
    service_account_annotations: dict[str, pulumi.Output[str]]
    """``iam.gke.io/gcp-service-account`` for the model server's service account."""
    node_pools: dict[str, gcp.container.NodePool]
    """``cpu`` and, with ``gpu_nodes``, ``gpu``."""

    def __init__(
        self,
        name: str,
        args: GkeClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        apis: ProjectApis | None = None,
    ) -> None:
        super().__init__("ml-endpoints:gcp:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pulumi.log.warn(f"GkeCluster {name}: {POOL_REPLACEMENT_NOTE}.", resource=self)
        enabled = apis_or_own(apis, self)
        after_iam = pulumi.ResourceOptions(
            parent=self, depends_on=enabled.enable(args.project, IAM)
        )

        cluster = gcp.container.Cluster(
            name,
            project=args.project,
            location=args.location,
            network=args.network,
            subnetwork=args.subnetwork,
            remove_default_node_pool=True,
            initial_node_count=1,
            deletion_protection=(
                True if args.deletion_protection is None else args.deletion_protection
            ),
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=args.release_channel),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{args.project}.svc.id.goog"
            ),
            datapath_provider="ADVANCED_DATAPATH",
            gateway_api_config=gcp.container.ClusterGatewayApiConfigArgs(
                channel="CHANNEL_STANDARD"
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=enabled.enable(args.project, CONTAINER)
            ),
        )
        self.cluster_name = cluster.name

        nodes_account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            project=args.project,
            account_id=f"{name[:20]}-nodes",
            display_name=f"GKE nodes of {name}",
            opts=after_iam,
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=nodes_account.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=child,
            )

        self.node_pools = {
            "cpu": self._node_pool(
                name, "cpu", args, args.cpu_nodes, nodes_account.email, cluster, child
            )
        }
        if args.gpu_nodes is not None:
            self.node_pools["gpu"] = self._node_pool(
                name, "gpu", args, args.gpu_nodes, nodes_account.email, cluster, child
            )

        serving = gcp.serviceaccount.Account(
            f"{name}-serving",
            project=args.project,
            account_id=f"{name[:18]}-serving",
            display_name=f"Model server on {name}",
            opts=after_iam,
        )
        # The pool as the cluster reports it: the binding waits for the cluster (module doc).
        workload_pool = cluster.workload_identity_config.apply(_workload_pool)
        gcp.serviceaccount.IAMMember(
            f"{name}-serving-workload-identity",
            service_account_id=serving.name,
            role="roles/iam.workloadIdentityUser",
            member=pulumi.Output.concat(
                "serviceAccount:",
                workload_pool,
                f"[{args.serving_namespace}/{args.serving_service_account}]",
            ),
            opts=child,
        )
        for role in args.serving_roles:
            gcp.projects.IAMMember(
                f"{name}-serving-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=serving.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=child,
            )
        self.serving_service_account_email = serving.email
        self.service_account_annotations = {"iam.gke.io/gcp-service-account": serving.email}

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name,
                cluster.endpoint,
                cluster.master_auth.apply(lambda auth: str(auth.cluster_ca_certificate)),
            ).apply(lambda v: gke_kubeconfig(v[0], v[1], v[2]))
        )
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, opts=child)
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "serving_service_account_email": self.serving_service_account_email,
            }
        )

    @property
    def google_service_account(self) -> pulumi.Output[str]:
        """The model server's Google service account (workload identity)."""
        return self.serving_service_account_email

    def node_pools_for(self, gpu: bool) -> list[pulumi.Resource]:
        """The pools that run a workload's pods: the GPU pool for GPU pods, else the CPU pool."""
        pool = self.node_pools.get("gpu" if gpu else "cpu")
        return [pool] if pool is not None else []

    @staticmethod
    def _node_pool(
        name: str,
        suffix: str,
        args: GkeClusterArgs,
        pool: GkeNodePool,
        service_account: pulumi.Output[str],
        cluster: gcp.container.Cluster,
        child: pulumi.ResourceOptions,
    ) -> gcp.container.NodePool:
        gpu = pool if isinstance(pool, GkeGpuPool) else None
        return gcp.container.NodePool(
            f"{name}-{suffix}",
            project=args.project,
            location=args.location,
            cluster=cluster.name,
            node_locations=(gpu.zones or None) if gpu else None,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                min_node_count=pool.min_nodes, max_node_count=pool.max_nodes
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=pool.machine_type,
                disk_size_gb=pool.disk_size_gb,
                spot=pool.spot,
                service_account=service_account,
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                labels={"ml-endpoints.io/pool": suffix, **(GPU_NODE_LABELS if gpu else {})},
                guest_accelerators=(
                    [
                        gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                            type=gpu.accelerator_type,
                            count=gpu.accelerator_count,
                            gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                                gpu_driver_version=gpu.driver_version
                            ),
                        )
                    ]
                    if gpu
                    else None
                ),
                taints=(
                    [
                        gcp.container.NodePoolNodeConfigTaintArgs(
                            key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"
                        )
                    ]
                    if gpu
                    else None
                ),
            ),
            opts=child,
        )
